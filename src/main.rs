//! The `understudy` binary: parses the command line, sets up logging, and calls the library.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use understudy::address::AddressBackend;
use understudy::cli::{self, exit, Cli, CliCommand, LogFormat};
use understudy::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
        CliCommand::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                match toml::to_string_pretty(&cfg.file) {
                    Ok(t) => print!("# {}: valid\n{t}", file.display()),
                    Err(e) => println!("# {}: valid (cannot print it: {e})", file.display()),
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        CliCommand::Run { config } => run_agent(&config).await,
        CliCommand::Demo(args) => run_demo(args).await,
        _ => unreachable!("client commands are handled above"),
    }
}

async fn run_agent(path: &std::path::Path) -> i32 {
    let shutdown = shutdown_signal();
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "configuration error");
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    let listen = cfg.file.http.listen;
    let backend = match understudy::address::Configured::from_config(&cfg) {
        Ok(b) => std::sync::Arc::new(b),
        Err(e) => {
            error!(error = %e, "configuration error");
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    if let Err(e) = backend.check().await {
        error!(error = %e, "address backend unusable");
        eprintln!("error: {e}");
        return exit::CONFIG;
    }
    info!(member = %cfg.file.member, backend = backend.name(), "address backend");
    let agent = match understudy::agent::Agent::open(cfg, backend) {
        Ok(a) => a,
        Err(e) => {
            error!(error = %e, "cannot open state");
            eprintln!("error: {e}");
            return exit::STATE;
        }
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return exit::CONFIG;
        }
    };
    let local = listener.local_addr().map_or(listen, |a| a);
    info!(member = %agent.name(), http = %local, "listening on {local}");
    let snmp = match agent.config().file.snmp.clone() {
        Some(c) => match understudy::snmp::SnmpServer::bind(agent.clone(), &c).await {
            Ok(s) => Some(s),
            Err(e) => {
                error!(error = %e, "cannot start SNMP");
                eprintln!("error: {e}");
                return exit::CONFIG;
            }
        },
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let snmp = snmp.map(|s| {
        let mut rx = stop_rx.clone();
        tokio::spawn(s.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        }))
    });
    let server = {
        let agent = agent.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(understudy::http::serve(listener, agent, async move {
            let _ = rx.wait_for(|s| *s).await;
        }))
    };
    let mut rx = stop_rx;
    let runner = {
        let agent = agent.clone();
        tokio::spawn(async move {
            agent
                .run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        })
    };
    shutdown.await;
    info!(member = %agent.name(), "shutting down");
    let _ = stop_tx.send(true);
    let _ = runner.await;
    let _ = server.await;
    if let Some(s) = snmp {
        let _ = s.await;
    }
    exit::OK
}

async fn run_demo(args: cli::DemoArgs) -> i32 {
    let shutdown = shutdown_signal();
    let demo = match understudy::demo::Demo::start(&args).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    print!("{}", demo.banner(&args));
    shutdown.await;
    info!("stopping the demo");
    demo.stop().await;
    exit::OK
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers at once — before anything is printed or
/// bound, so that a signal sent as soon as the process announces itself is not lost — and
/// returns a future that resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {}
                    _ = t.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
