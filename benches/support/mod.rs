//! What the benchmarks share: flags and the peak memory of a child process.

/// The number after `--name` on the command line, or `default`.
#[allow(dead_code)]
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].parse().expect("a number after the flag"))
        .unwrap_or(default)
}

/// Waits for the child and returns its peak resident set size (KiB): the
/// kernel's high-water mark of the child's own memory (`VmHWM`), read every 20 ms
/// until it exits. `wait4`'s `ru_maxrss` would not do: a child spawned from this
/// process starts its count from this process's size at the fork, and the
/// stand-in here grows from phase to phase.
#[allow(dead_code)]
pub fn wait_for_peak_rss(pid: libc::pid_t) -> i64 {
    let status_path = format!("/proc/{pid}/status");
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            let hwm = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<i64>()
                        .ok()
                });
            peak = peak.max(hwm.unwrap_or(0));
        }
        let mut status = 0;
        // SAFETY: pid is our own child; status is a valid pointer.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(reaped >= 0, "waitpid failed");
        if reaped == pid {
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
