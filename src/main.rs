//! The `customersim` binary: the library's command line with the built-in plugins.

fn main() -> std::process::ExitCode {
    customersim::cli::main()
}
