//! The command line: argument definitions, and the client commands (`status`, `takeover`, ...)
//! that talk to an agent's HTTP API and print readable tables or JSON. Does network I/O.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "understudy",
    version,
    about = "Redundancy agent for groups of application servers"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), also from RUST_LOG.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run one member's agent.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file and print the effective configuration.
    CheckConfig { file: PathBuf },
    /// Start a whole group on 127.0.0.1 in one process, with simulated addressing.
    Demo(DemoArgs),
    /// Show the group as an agent sees it; the exit status makes it a scripted check.
    ///
    /// Exit status (as a Nagios / keepalived check reads it): 0 the group is redundant; 1 it
    /// is not (an alarm is raised: the table says why); 3 the agent could not be reached or
    /// did not answer (UNKNOWN); 2 a usage error.
    Status(ClientArgs),
    /// Manual takeover: BACKUP takes over MAIN's address, services and identity.
    Takeover {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        backup: String,
        #[arg(long)]
        main: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reverse takeover: MAIN returns to its address, its Backup to standby.
    ReverseTakeover {
        #[command(flatten)]
        client: ClientArgs,
        main: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Swap roles: the Backup acting for MAIN becomes the configured Main.
    Reconfigure {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        main: String,
        #[arg(long)]
        backup: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replace takeover: MAIN's new server (started with MAIN's configuration, an empty state
    /// and an empty data_dir) gets the data the Backup served, takes MAIN's address and goes
    /// online; the Backup returns to standby. Sent to any agent; MAIN's new one carries it out.
    ReplaceTakeover {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        main: String,
        /// The member the new server runs as: MAIN itself (the default).
        #[arg(long)]
        replacement: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Turn auto-failover on or off for MEMBER.
    AutoFailover {
        #[command(flatten)]
        client: ClientArgs,
        member: String,
        #[arg(value_enum)]
        setting: OnOff,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replicate now: BACKUP copies its Mains' data (or only --main) and reports each result.
    Replicate {
        #[command(flatten)]
        client: ClientArgs,
        backup: String,
        #[arg(long)]
        main: Option<String>,
    },
    /// Show the event history, newest first.
    Events(ClientArgs),
    /// Maintenance mode for the whole group: while on, no automatic failover happens
    /// anywhere in the group; manual operations still work.
    Maintenance {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(value_enum)]
        setting: OnOff,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Write the man pages (one for understudy, one per command) and the bash, zsh and fish
    /// completions, generated from this command line's definition, under OUT (what the Debian
    /// package installs; scripts/package runs it).
    #[command(hide = true)]
    GenerateDocs {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The agent's HTTP API.
    #[arg(long, env = "UNDERSTUDY_URL", default_value = "http://127.0.0.1:9400")]
    pub url: String,
    /// Bearer token for commands.
    #[arg(long, env = "UNDERSTUDY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from a file.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Verify the agent of an https:// URL against this CA (PEM) alone; without it, against
    /// the system's CA certificates.
    #[arg(long, env = "UNDERSTUDY_CA")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub mains: u16,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub backups: u16,
    /// First HTTP port; member k listens on P+k (0: an ephemeral port per member).
    #[arg(long, default_value_t = 9400)]
    pub http_port: u16,
    /// First SNMP (UDP) port; member k listens on Q+k (0: every member on an ephemeral port;
    /// also the case with --http-port 0 unless --snmp-port is given another value).
    #[arg(long, default_value_t = 16100)]
    pub snmp_port: u16,
    /// Where the members keep their state (default: a new temporary directory).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The API token.
    #[arg(long, default_value = "demo-token")]
    pub token: String,
    /// A notification receiver (HOST:PORT, repeatable): every member sends it SNMPv2c traps
    /// with community "public" (coldStart, rgTakeover, rgNoRedundancy, ...).
    #[arg(long)]
    pub trap_target: Vec<SocketAddr>,
    /// Replication interval.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub replication_interval: Duration,
}

/// Whether the human log format colours its output (ANSI escape codes): only when the log
/// stream is a terminal, and not when `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>). A log written to a file or a pipe (journald, a log file) carries
/// no escape codes. Pure.
pub fn log_colours(stream_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stream_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Exit codes of the client commands.
pub mod exit {
    pub const OK: i32 = 0;
    /// The agent refused the command (precondition, unknown member, bad input, token).
    pub const REFUSED: i32 = 1;
    /// `status`: the group is not redundant (an alarm is raised).
    pub const NOT_REDUNDANT: i32 = 1;
    /// `replicate`: the agent ran the replication and a copy failed (the answer says why).
    pub const WORK_FAILED: i32 = 1;
    /// The agent could not be reached or could not act.
    pub const UNAVAILABLE: i32 = 3;
    /// Configuration error (EX_USAGE).
    pub const CONFIG: i32 = 64;
    /// The state directory could not be used (EX_DATAERR).
    pub const STATE: i32 = 65;
}

/// What a client command sends.
#[derive(Debug)]
pub struct Request {
    pub method: reqwest::Method,
    pub path: String,
    pub body: Option<Value>,
}

/// Builds the HTTP request of a client command (None for non-client commands).
pub fn request_for(cmd: &CliCommand) -> Option<(&ClientArgs, Request)> {
    let post = |client, path: &str, body: Value| {
        Some((
            client,
            Request {
                method: reqwest::Method::POST,
                path: path.to_string(),
                body: Some(body),
            },
        ))
    };
    match cmd {
        CliCommand::Status(c) => Some((
            c,
            Request {
                method: reqwest::Method::GET,
                path: "/api/v1/group".into(),
                body: None,
            },
        )),
        CliCommand::Events(c) => Some((
            c,
            Request {
                method: reqwest::Method::GET,
                path: "/api/v1/events".into(),
                body: None,
            },
        )),
        CliCommand::Takeover {
            client,
            backup,
            main,
            reason,
        } => post(
            client,
            "/api/v1/takeover",
            json!({"backup": backup, "main": main, "reason": reason}),
        ),
        CliCommand::ReverseTakeover {
            client,
            main,
            reason,
        } => post(
            client,
            "/api/v1/reverse-takeover",
            json!({"main": main, "reason": reason}),
        ),
        CliCommand::Reconfigure {
            client,
            main,
            backup,
            reason,
        } => post(
            client,
            "/api/v1/reconfigure",
            json!({"main": main, "backup": backup, "reason": reason}),
        ),
        CliCommand::ReplaceTakeover {
            client,
            main,
            replacement,
            reason,
        } => post(
            client,
            "/api/v1/replace-takeover",
            json!({
                "main": main,
                "replacement": replacement.as_deref().unwrap_or(main.as_str()),
                "reason": reason,
            }),
        ),
        CliCommand::AutoFailover {
            client,
            member,
            setting,
            reason,
        } => switch(
            client,
            format!("/api/v1/members/{member}/auto-failover"),
            *setting,
            reason,
        ),
        CliCommand::Maintenance {
            client,
            setting,
            reason,
        } => switch(client, "/api/v1/maintenance".into(), *setting, reason),
        CliCommand::Replicate {
            client,
            backup,
            main,
        } => post(
            client,
            &format!("/api/v1/members/{backup}/replicate"),
            json!({ "main": main }),
        ),
        _ => None,
    }
}

/// `PUT path {"enabled", "reason"}`: an on/off setting (auto-failover, maintenance mode).
fn switch<'a>(
    client: &'a ClientArgs,
    path: String,
    setting: OnOff,
    reason: &Option<String>,
) -> Option<(&'a ClientArgs, Request)> {
    Some((
        client,
        Request {
            method: reqwest::Method::PUT,
            path,
            body: Some(json!({"enabled": setting == OnOff::On, "reason": reason})),
        },
    ))
}

/// `understudy check-config FILE`: prints the configuration with every default filled in, or
/// what is wrong with it (exit 1). A secret file that `run` would refuse (its group or others
/// may read or write it, or it holds a value published in the examples or the demo) is a
/// warning on stderr, as are the configuration's other warnings: they do not change the exit
/// status.
pub fn check_config(file: &std::path::Path) -> i32 {
    match crate::config::Config::check(file) {
        Ok((cfg, secret_warnings)) => {
            match toml::to_string_pretty(&cfg.file) {
                Ok(t) => print!("# {}: valid\n{t}", file.display()),
                Err(e) => println!("# {}: valid (cannot print it: {e})", file.display()),
            }
            for w in cfg.file.warnings() {
                eprintln!("warning: {w}");
            }
            for w in secret_warnings {
                eprintln!("warning: {w} (`understudy run` refuses it)");
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `understudy generate-docs --out DIR`: writes `DIR/man/man1/understudy.1` and
/// `DIR/man/man1/understudy-COMMAND.1` for every command (hidden ones left out), and
/// `DIR/completions/` `understudy.bash`, `_understudy` (zsh) and `understudy.fish`, all
/// rendered from [`Cli`]'s definition. Returns the files written.
pub fn generate_docs(out: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let man = out.join("man").join("man1");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(
            shell,
            &mut Cli::command(),
            "understudy",
            &completions,
        )?);
    }
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    written.splice(0..0, pages);
    Ok(written)
}

/// An error and its causes, one after the other (reqwest's own says only "error sending
/// request").
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out += &format!(": {text}");
        }
        source = s.source();
    }
    out
}

/// The certificate error among `e`'s causes, if the TLS handshake failed over the server's
/// certificate.
fn certificate_problem(e: &dyn std::error::Error) -> Option<String> {
    let mut source = e.source();
    while let Some(s) = source {
        // An I/O error's source() skips the error it wraps: look inside too.
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(why)) =
            inner.or_else(|| s.downcast_ref::<rustls::Error>())
        {
            return Some(format!("{why:?}"));
        }
        // Some layers box the TLS error in one of their own; its text is rustls' still.
        if let Some(why) = s.to_string().strip_prefix("invalid peer certificate: ") {
            return Some(why.to_string());
        }
        source = s.source();
    }
    None
}

/// Runs a client command; returns the process exit code. Output goes to `out`, errors to
/// `err`.
pub async fn run_client(
    args: &ClientArgs,
    req: Request,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(t) => Some(t.trim().to_string()),
            Err(e) => {
                let _ = writeln!(err, "error: cannot read token file {}: {e}", f.display());
                return exit::REFUSED;
            }
        },
        (None, None) => None,
    };
    let mut builder = reqwest::Client::builder().timeout(args.timeout);
    if let Some(ca) = &args.ca {
        match crate::tls::cli_client_config(ca) {
            Ok(tls) => builder = builder.use_preconfigured_tls(tls),
            Err(e) => {
                let _ = writeln!(err, "error: --ca {}: {}", ca.display(), e.message);
                return exit::REFUSED;
            }
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return exit::UNAVAILABLE;
        }
    };
    let url = format!("{}{}", args.url.trim_end_matches('/'), req.path);
    let mut rb = client.request(req.method.clone(), &url);
    if let Some(t) = &token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = &req.body {
        rb = rb.json(b);
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: cannot reach {url}: {}", causes(&e));
            if let Some(why) = certificate_problem(&e) {
                let hint = if args.ca.is_some() {
                    "is the agent's certificate signed by the CA given with --ca?"
                } else {
                    "give the CA of the agent's certificate with --ca FILE (or UNDERSTUDY_CA)"
                };
                let _ = writeln!(
                    err,
                    "error: the agent's TLS certificate is not trusted ({why}): {hint}"
                );
            }
            return exit::UNAVAILABLE;
        }
    };
    let status = resp.status();
    let body: Value = match resp.json().await {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "error: {url} answered {status} without JSON: {e}");
            return exit::UNAVAILABLE;
        }
    };
    if !status.is_success() {
        if args.json {
            let _ = writeln!(out, "{}", pretty(&body));
        }
        let _ = writeln!(
            err,
            "error: {} ({}): {}",
            body["error"].as_str().unwrap_or("error"),
            status.as_u16(),
            body["message"].as_str().unwrap_or("")
        );
        if let Some(failed) = body["failed"].as_array() {
            for f in failed {
                let _ = writeln!(err, "  failed: {}", f.as_str().unwrap_or(""));
            }
        }
        return if status.is_server_error() {
            exit::UNAVAILABLE
        } else {
            exit::REFUSED
        };
    }
    let code = if req.path == "/api/v1/group" && body["redundancy"]["redundant"] != true {
        exit::NOT_REDUNDANT
    } else if body["outcome"] == "failed" {
        exit::WORK_FAILED
    } else {
        exit::OK
    };
    if args.json {
        let _ = writeln!(out, "{}", pretty(&body));
    } else if req.path == "/api/v1/group" {
        let _ = write!(out, "{}", group_table(&body));
    } else if req.path == "/api/v1/events" {
        let _ = write!(out, "{}", events_table(&body));
    } else {
        let _ = writeln!(out, "{}", body["message"].as_str().unwrap_or("done"));
        let _ = write!(out, "{}", group_table(&body["group"]));
    }
    code
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut s = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        s += &line(r.clone());
    }
    s
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

/// The group as a table, like the seed's Redundancy configuration page.
pub fn group_table(g: &Value) -> String {
    let mut s = String::new();
    let red = &g["redundancy"];
    if red["redundant"].as_bool() == Some(true) {
        s += &format!("group {}: redundant\n", text(&g["group"]));
    } else {
        s += &format!(
            "group {}: NO REDUNDANCY since {}\n",
            text(&g["group"]),
            text(&red["since"])
        );
        for a in red["alarms"].as_array().into_iter().flatten() {
            s += &format!("  alarm: {}\n", text(&a["reason"]));
        }
    }
    let maint = &g["maintenance"];
    if maint["enabled"].as_bool() == Some(true) {
        s += &format!(
            "MAINTENANCE MODE since {} (by {}{}): no automatic failover in the group\n",
            text(&maint["since"]),
            text(&maint["changed_by"]),
            maint["reason"]
                .as_str()
                .map(|r| format!(", reason: {r}"))
                .unwrap_or_default()
        );
    }
    let rows: Vec<Vec<String>> = g["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let rep = &m["last_replication"];
            vec![
                if m["takeover_flag"].as_bool() == Some(true) {
                    "*".into()
                } else {
                    String::new()
                },
                text(&m["index"]),
                text(&m["name"]),
                text(&m["configured_role"]),
                text(&m["operational_state"]),
                text(&m["configured_address"]),
                text(&m["current_address"]),
                text(&m["extra_address"]),
                if m["auto_failover"].as_bool() == Some(true) {
                    "on".into()
                } else {
                    "off".into()
                },
                match rep["time"].as_str() {
                    Some(t) => format!("{} {t}", text(&rep["result"])),
                    None => text(&rep["result"]),
                },
                paths(m),
            ]
        })
        .collect();
    s += &table(
        &[
            "T",
            "#",
            "MEMBER",
            "ROLE",
            "STATE",
            "CONFIGURED",
            "CURRENT",
            "EXTRA",
            "AUTO-FAILOVER",
            "LAST REPLICATION",
            "PATHS",
        ],
        &rows,
    );
    s += "(T: * = takeover flag, the yellow row; #: rgMemberIndex, the member's SNMP row; \
          PATHS: is the member heard on each heartbeat path)\n";
    s
}

/// A member's heartbeat paths as this agent hears them: `lan:up,wan:DOWN`; `local` for the
/// agent's own member.
fn paths(m: &Value) -> String {
    if m["local"].as_bool() == Some(true) {
        return "local".into();
    }
    let Some(paths) = m["peer_paths"].as_object().filter(|p| !p.is_empty()) else {
        return "-".into();
    };
    paths
        .iter()
        .map(|(name, up)| {
            let state = if up.as_bool() == Some(true) {
                "up"
            } else {
                "DOWN"
            };
            format!("{name}:{state}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn events_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                text(&e["time"]),
                text(&e["kind"]),
                text(&e["outcome"]),
                format!(
                    "{}:{}",
                    text(&e["requested_by"]["interface"]),
                    text(&e["requested_by"]["identity"])
                ),
                e["members"]
                    .as_array()
                    .map(|m| m.iter().map(text).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
                text(&e["reason"]),
                text(&e["message"]),
            ]
        })
        .collect();
    table(
        &[
            "TIME",
            "KIND",
            "OUTCOME",
            "REQUESTED BY",
            "MEMBERS",
            "REASON",
            "MESSAGE",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_on_a_terminal_and_an_empty_no_color_is_unset() {
        assert!(log_colours(true, None));
        assert!(log_colours(true, Some(OsStr::new(""))));
        assert!(!log_colours(true, Some(OsStr::new("1"))));
        assert!(!log_colours(false, None));
    }

    #[test]
    fn paths_name_each_path_and_say_which_are_down() {
        let m = json!({"local": false, "peer_paths": {"lan": true, "wan": false}});
        assert_eq!(paths(&m), "lan:up,wan:DOWN");
        assert_eq!(
            paths(&json!({"local": true, "peer_paths": {"lan": true}})),
            "local"
        );
        assert_eq!(paths(&json!({"local": false, "peer_paths": {}})), "-");
    }
}
