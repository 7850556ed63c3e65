//! The `tandem` command: run the server, manage accounts.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tandem::config::Config;
use tandem::http::accounts::{NewUser, create_user};
use tandem::store::{AccountRole, Store};

#[derive(Parser)]
#[command(name = "tandem", version, about = "Tandem remote support server")]
struct Cli {
    /// Configuration file (TOML) over the built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// SQLite database file (overrides storage.database).
    #[arg(long, global = true)]
    database: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Recordings in ARF, Tandem's recording format.
    Arf {
        #[command(subcommand)]
        command: ArfCommand,
    },
    /// Convert an ARF recording to MP4 (H.264 and AAC, fast-start), with annotations and the
    /// pointer drawn in. Nothing is left at OUTPUT if it fails.
    Export { input: PathBuf, output: PathBuf },
}

#[derive(Subcommand)]
enum ArfCommand {
    /// Describe a recording: header, tracks, events, duration, and whether it was closed
    /// cleanly or ends torn (as after a crash). Exits non-zero on damage.
    Inspect { file: PathBuf },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account. The password is read from standard input (one line).
    Add {
        #[arg(long)]
        username: String,
        /// admin, csr or agent.
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List accounts.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let Cli {
        config,
        database,
        command,
    } = Cli::parse();
    let load = || -> anyhow::Result<Config> {
        let mut config = Config::load(config.as_deref(), std::env::vars())?;
        if let Some(db) = &database {
            config.storage.database = db.clone();
        }
        Ok(config)
    };
    match command {
        Command::Serve { listen } => {
            // Every connection is a descriptor: take all the system allows (src/open_files.rs).
            match tandem::open_files::raise() {
                (limit, None) => tracing::info!(%limit, "open-file limit"),
                (limit, Some(error)) => {
                    tracing::warn!(%limit, %error, "open-file limit (raising it failed)")
                }
            }
            let mut config = load()?;
            if let Some(l) = listen {
                config.server.listen = l;
            }
            let server = tandem::server::start(config).await?;
            println!("Tandem is listening on http://{}", server.addr);
            server.run_until_signal().await?;
        }
        Command::Arf {
            command: ArfCommand::Inspect { file },
        } => {
            let summary = tandem_arf::inspect(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e} ({})", file.display(), e.code()))?;
            print!("{summary}");
        }
        Command::Export { input, output } => {
            let mut last = -1;
            let report = tandem::exporter::export_file(&input, &output, &mut |done| {
                let pct = (done * 100.0) as i64;
                if pct / 10 != last / 10 {
                    eprintln!("{pct} %");
                    last = pct;
                }
            })
            .map_err(|e| anyhow::anyhow!("{}: {e} ({})", input.display(), e.code()))?;
            println!(
                "{}: {:.1} s of recording in {:.1} s ({:.1}x), {}x{}, {} bytes{}",
                output.display(),
                report.duration_us as f64 / 1e6,
                report.wall.as_secs_f64(),
                report.speed,
                report.width,
                report.height,
                report.output_bytes,
                if report.truncated {
                    " (the recording's file ends early)"
                } else {
                    ""
                }
            );
        }
        Command::User { command } => {
            let config = load()?;
            let store = Store::open(&config.storage.database).await?;
            match command {
                UserCommand::Add {
                    username,
                    role,
                    email,
                    display_name,
                } => {
                    let role: AccountRole = role.parse().map_err(anyhow::Error::msg)?;
                    let mut password = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut password)
                        .context("reading the password from standard input")?;
                    let password = password.trim_end_matches(['\r', '\n']).to_string();
                    if password.is_empty() {
                        bail!(
                            "give the password on standard input, e.g. `echo 'a long password' | tandem user add ...`"
                        );
                    }
                    let user = create_user(
                        &store,
                        NewUser {
                            display_name: display_name.unwrap_or_else(|| username.clone()),
                            username,
                            password,
                            email,
                            role,
                        },
                    )
                    .await
                    .map_err(|p| anyhow::anyhow!("{}: {}", p.code, p.detail))?;
                    println!(
                        "added {} ({}) with id {}",
                        user.username,
                        user.role.as_str(),
                        user.id
                    );
                }
                UserCommand::List => {
                    for u in store.users().await? {
                        println!("{}\t{}\t{}\t{}", u.id, u.username, u.role.as_str(), u.email);
                    }
                }
            }
        }
    }
    Ok(())
}
