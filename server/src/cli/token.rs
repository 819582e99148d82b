//! `apitrail token`: create, list and revoke access tokens.
//!
//! Tokens live in the data directory's token file, which a running server
//! rereads when it changes, so these commands work while the server runs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth::Role;
use crate::auth::tokens;
use crate::config::ServerConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret, which is shown only this once.
    Create(CreateArgs),
    /// List the tokens: names, roles and creation times, never secrets.
    List(ListArgs),
    /// Revoke a token: new requests and logins with it are rejected.
    Revoke(RevokeArgs),
}

/// Location of the token file: the server's data directory.
#[derive(Debug, Clone, clap::Args)]
struct DataDir {
    /// TOML configuration file of the server, to find its data directory.
    #[arg(long, env = "APITRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the server [default: ./apitrail-data].
    #[arg(long, env = "APITRAIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDir {
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        let config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        Ok(config.data_dir)
    }
}

#[derive(Debug, Clone, clap::Args)]
struct CreateArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// Role of the token; repeat for several (admin includes read and ingest).
    #[arg(long = "role", value_enum, required = true)]
    roles: Vec<Role>,
    /// Print the token as a JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Name of the token, used as the PostgreSQL user name and the Basic auth user.
    name: String,
}

#[derive(Debug, Clone, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct RevokeArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// Name of the token to revoke.
    name: String,
}

pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create(args) => create(args),
        TokenCommand::List(args) => list(args),
        TokenCommand::Revoke(args) => revoke(args),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.resolve()?;
    let token = tokens::create(&data_dir, &args.name, &args.roles)?;
    if args.json {
        let object = serde_json::json!({
            "name": token.record.name,
            "roles": token.record.roles,
            "created_at": token.record.created_at,
            "secret": token.secret,
        });
        println!("{object}");
    } else {
        println!(
            "created token {} with roles {}",
            token.record.name, token.record.roles
        );
        println!("secret: {}", token.secret);
        println!("The secret is shown only now and is stored as a hash.");
        println!("HTTP, Flight SQL: Authorization: Bearer {}", token.secret);
        println!(
            "PostgreSQL: user {} with the secret as password",
            token.record.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.resolve()?;
    let records = tokens::list(&data_dir)?;
    if args.json {
        for record in &records {
            let object = serde_json::json!({
                "name": record.name,
                "roles": record.roles,
                "created_at": record.created_at,
            });
            println!("{object}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("no tokens in {}", data_dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let name_width = records
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let roles: Vec<String> = records.iter().map(|r| r.roles.to_string()).collect();
    let roles_width = roles.iter().map(String::len).max().unwrap_or(5).max(5);
    println!("{:name_width$}  {:roles_width$}  CREATED", "NAME", "ROLES");
    for (record, roles) in records.iter().zip(&roles) {
        println!(
            "{:name_width$}  {:roles_width$}  {}",
            record.name, roles, record.created_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.resolve()?;
    let record = tokens::revoke(&data_dir, &args.name)?;
    println!("revoked token {} (roles {})", record.name, record.roles);
    Ok(ExitCode::SUCCESS)
}
