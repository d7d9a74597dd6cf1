//! The command line: the only place that prints to the terminal.

#![allow(clippy::print_stdout, clippy::print_stderr)]

/// Prints a line on standard output, like `println!`, but a reader that went
/// away (`ponte messages list | head`) ends ponte quietly instead of a panic.
macro_rules! out {
    () => {
        $crate::cli::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

mod bench;
mod keys;
mod messages;
mod outbox;
mod table;
mod topics;

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings, mask_secrets};
use crate::kafka::{self, dev::DevKafka};
use crate::{server, telemetry};

/// HTTP-to-Kafka bridge with a durable outbox.
#[derive(Debug, Parser)]
#[command(name = "ponte", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge.
    Serve {
        /// Run against an embedded, in-memory Kafka with a throw-away outbox:
        /// nothing is kept when ponte stops.
        #[arg(long)]
        dev: bool,
        #[command(flatten)]
        settings: Overrides,
    },
    /// Show, list, retry and replay records in the outbox.
    Messages {
        #[command(subcommand)]
        action: messages::MessagesCommand,
        #[command(flatten)]
        settings: Overrides,
    },
    /// Outbox statistics, and purging old rows.
    Outbox {
        #[command(subcommand)]
        action: outbox::OutboxCommand,
        #[command(flatten)]
        settings: Overrides,
    },
    /// List, describe, create and delete topics.
    Topics {
        #[command(subcommand)]
        action: topics::TopicsCommand,
        #[command(flatten)]
        settings: Overrides,
    },
    /// Make an API key: prints its secret once and the lines for the configuration.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Measure ponte: load runs verified end to end, the disk's and Kafka's limits,
    /// and the suite behind docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        action: bench::BenchCommand,
    },
    /// Check the configuration and print it, with secrets masked.
    Config {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: Overrides,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new key.
    Generate {
        /// The key's name, shown in logs and the audit trail.
        name: String,
        /// A scope (repeatable): produce, produce:PATTERN, read, replay, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = load_dotenv().and_then(|()| match cli.command {
        Command::Serve { dev, settings } => serve(dev, &settings),
        Command::Config { json, settings } => print_config(json, &settings),
        Command::Bench { action } => bench::run(action),
        Command::Keys {
            action: KeysCommand::Generate { name, scopes },
        } => keys::generate(&name, &scopes),
        Command::Messages { action, settings } => {
            load(&settings).and_then(|s| messages::run(action, &s.outbox_path))
        }
        Command::Outbox { action, settings } => {
            load(&settings).and_then(|s| outbox::run(action, &s.outbox_path))
        }
        Command::Topics { action, settings } => {
            load(&settings).and_then(|s| topics::run(action, &s))
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ponte: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Who runs a command, for the audit trail: `cli:` and the operator's user name.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

fn load(overrides: &Overrides) -> anyhow::Result<Settings> {
    Settings::load(overrides).context("invalid configuration")
}

/// Loads `.env` from the working directory into the environment, the way the old
/// middleware did; variables already set keep their values.
fn load_dotenv() -> anyhow::Result<()> {
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => Err(err).context("cannot read .env"),
        _ => Ok(()),
    }
}

fn serve(dev: bool, overrides: &Overrides) -> anyhow::Result<()> {
    let mut settings = Settings::load_with_secrets(overrides).context("invalid configuration")?;
    // Held until the server stops: dropping them stops the embedded Kafka and
    // deletes the throw-away outbox.
    let _dev = if dev {
        Some(prepare_dev(&mut settings)?)
    } else {
        None
    };
    kafka::check_producer_config(&settings).context("invalid kafka_properties")?;
    telemetry::init_logging(settings.log_level, settings.log_format);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(server::run(settings, server::shutdown_signal()))?;
    Ok(())
}

fn prepare_dev(settings: &mut Settings) -> anyhow::Result<(DevKafka, tempfile::TempDir)> {
    let kafka = DevKafka::start().context("cannot start the embedded Kafka")?;
    let outbox_dir = tempfile::Builder::new()
        .prefix("ponte-dev-")
        .tempdir()
        .context("cannot create a directory for the throw-away outbox")?;

    settings.kafka_brokers = kafka.bootstrap_servers();
    settings.outbox_path = outbox_dir.path().join("outbox.db");
    if settings.bind_address.is_unspecified() {
        settings.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    }

    let bootstrap = &settings.kafka_brokers;
    let url = format!("http://{}:{}", settings.bind_address, settings.port);
    out!("ponte dev mode: embedded in-memory Kafka, throw-away outbox.");
    out!("WARNING: nothing published here is kept; it is gone when ponte stops.");
    out!("  kafka bootstrap: {bootstrap}  (read with: kcat -b {bootstrap} -C -t demo)");
    out!("  outbox:          {}", settings.outbox_path.display());
    out!("  try:");
    out!(
        "    curl -s -X POST {url}/topics/demo -H 'Content-Type: application/json' \\\n      \
         -d '{{\"key\":\"NF-1\",\"data\":{{\"documento\":\"000001\",\"valor\":1500.00}}}}'"
    );
    out!("    curl -s {url}/health");
    Ok((kafka, outbox_dir))
}

fn print_config(json: bool, overrides: &Overrides) -> anyhow::Result<()> {
    let mut settings = Settings::load_with_secrets(overrides).context("invalid configuration")?;
    kafka::check_producer_config(&settings).context("invalid kafka_properties")?;
    settings.kafka_properties = mask_secrets(&settings.kafka_properties);

    let text = if json {
        serde_json::to_string_pretty(&settings)?
    } else {
        toml::to_string_pretty(&settings)?
    };
    out!("{text}");
    Ok(())
}

/// Writes one line on standard output; see [`out!`].
fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("ponte: cannot write to standard output: {err}");
        std::process::exit(1);
    }
}
