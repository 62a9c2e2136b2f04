fn main() -> std::process::ExitCode {
    use std::io::Write;
    // Block-buffered: JSON and text are written in many small pieces, and a
    // line-buffered stdout would flush at every newline.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut code = rtse_conformance::cli::main_with(std::env::args_os(), &mut out, &mut std::io::stderr().lock());
    if out.flush().is_err() && code == rtse_conformance::cli::exit::OK {
        code = rtse_conformance::cli::exit::USAGE;
    }
    std::process::ExitCode::from(code)
}
