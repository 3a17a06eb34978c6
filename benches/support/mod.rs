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

/// Waits for the child and returns its peak resident set size (KiB), from the
/// kernel's accounting of that one process.
#[allow(dead_code)]
pub fn wait_for_peak_rss(pid: libc::pid_t) -> i64 {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; both pointers are valid.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    usage.ru_maxrss
}
