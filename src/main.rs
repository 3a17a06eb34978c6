use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    one_malloc_arena_per_core();
    stripe_sync::cli::main()
}

/// glibc's malloc gives a thread that finds the arenas busy an arena of its own,
/// up to eight per core, and each arena keeps the high-water mark of what its
/// threads held. sqlx runs every SQLite connection on a thread of its own, so a
/// bulk run's pages were spread over as many arenas as it has connections, and
/// its peak RSS grew with the length of the run, not with what it held: a
/// 1,000,000-user `--refresh` peaked at 1.23× a 100,000-user one (bench part
/// five, anonymous memory 24 → 34 MiB), and 1.05× with one arena per core.
/// Threads that never run at the same time need no arena each. An operator's
/// `MALLOC_ARENA_MAX` (or `GLIBC_TUNABLES`) still rules.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena_per_core() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes malloc's settings, and it is called before
    // the program has started a second thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}
