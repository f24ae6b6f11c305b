use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = proxdesk::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(proxdesk::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxdesk: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
