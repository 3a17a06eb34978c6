use super::CliError;
use crate::config::Config;
use crate::startup::{self, App};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply nothing: list this release's migrations not yet applied and exit 1
    /// if there are any (for a deploy pipeline)
    #[arg(long)]
    pub check: bool,
}

/// Applies this release's pending migrations. On a database a newer release
/// has migrated further it changes nothing and says so (exit 0).
pub async fn run(config: Config, args: Args) -> Result<(), CliError> {
    let schema = startup::read_schema(&config).await?;
    let known = schema.known_newest();
    if args.check {
        let pending = schema.pending();
        if pending.is_empty() {
            println!("up to date: every migration of this release ({known}) is applied");
            return Ok(());
        }
        for (version, description) in &pending {
            println!("not applied: {version} {description}");
        }
        return Err(CliError::Reported(format!(
            "{} migration(s) of this release not applied: run stripe-sync migrate",
            pending.len()
        )));
    }
    if let Some(found) = schema.newer_than_release() {
        println!(
            "the database is at {found}, newer than this release's {known}: nothing to do; \
             run the newer release's migrate"
        );
        return Ok(());
    }
    let app = App::build(config).await?;
    println!("migrations applied ({})", app.customers.database_kind());
    Ok(())
}
