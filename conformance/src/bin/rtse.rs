fn main() -> std::process::ExitCode {
    use std::io::Write;
    if std::env::args_os().nth(1).is_some_and(|a| a == "proxy") {
        on_sigint();
    }
    // The process ends when the command returns: `rtse timeline` need not
    // free its engine's memory first.
    rtse_conformance::timeline::PROCESS_EXITS_AFTER_RUN.store(true, std::sync::atomic::Ordering::Relaxed);
    // Block-buffered: JSON and text are written in many small pieces, and a
    // line-buffered stdout would flush at every newline.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut code = rtse_conformance::cli::main_with(std::env::args_os(), &mut out, &mut std::io::stderr().lock());
    if out.flush().is_err() && code == rtse_conformance::cli::exit::OK {
        code = rtse_conformance::cli::exit::USAGE;
    }
    std::process::ExitCode::from(code)
}

/// `rtse proxy`: the first ctrl-c asks it to stop (it closes its
/// connections, prints its summary, writes its files); the handler then
/// resets itself, so a second ctrl-c ends the process at once.
#[cfg(unix)]
fn on_sigint() {
    extern "C" fn handler(_: libc::c_int) {
        // An atomic store is async-signal-safe.
        rtse_conformance::proxy::INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // SAFETY: `sa` is fully initialised (zeroed, then the fields set) before
    // sigaction reads it; the handler only stores to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn on_sigint() {}
