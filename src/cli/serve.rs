use tokio::net::TcpListener;

use super::CliError;
use crate::config::Config;
use crate::startup::App;

pub async fn run(config: Config) -> Result<(), CliError> {
    let bind = config.bind.clone();
    let app = App::build(config).await?;
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|e| CliError::failed(format!("could not listen on {bind}"), e))?;
    match &app.config.stripe {
        Some(stripe) => tracing::info!(api_base = %stripe.api_base, "Stripe is configured"),
        None => tracing::warn!("STRIPE_SECRET is not set: Stripe actions will say so"),
    }
    tracing::info!(
        database = app.sync.database_kind(),
        "listening on http://{bind}"
    );
    app.serve(listener)
        .await
        .map_err(|e| CliError::failed("server error", e))
}
