use super::CliError;
use crate::config::Config;
use crate::startup::App;

/// Building the app applies the migrations; nothing else is started.
pub async fn run(config: Config) -> Result<(), CliError> {
    let app = App::build(config).await?;
    println!("migrations applied ({})", app.sync.database_kind());
    Ok(())
}
