//! The `understudy` binary: parses the command line, sets up logging, loads the configuration
//! and calls the library. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use tracing::error;
use tracing_subscriber::EnvFilter;
use understudy::cli::{self, exit, Cli, CliCommand, LogFormat};
use understudy::config::Config;
use understudy::{demo, node};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(cli::log_colours(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn run(cli: Cli) -> i32 {
    if let Some((args, req)) = cli::request_for(&cli.command) {
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        return cli::run_client(args, req, &mut out, &mut err).await;
    }
    match cli.command {
        CliCommand::CheckConfig { file } => cli::check_config(&file),
        CliCommand::Run { config } => match Config::load(&config) {
            Ok(cfg) => node::run(cfg).await,
            Err(e) => {
                error!(error = %e, "configuration error");
                eprintln!("error: {e}");
                exit::CONFIG
            }
        },
        CliCommand::Demo(args) => demo::run(args).await,
        CliCommand::GenerateDocs { out } => match cli::generate_docs(&out) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                exit::OK
            }
            Err(e) => {
                eprintln!(
                    "error: cannot write the documentation under {}: {e}",
                    out.display()
                );
                1
            }
        },
        _ => unreachable!("client commands are handled above"),
    }
}
