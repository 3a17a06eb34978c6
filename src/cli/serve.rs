use tokio::net::TcpListener;

use super::CliError;
use crate::config::Config;
use crate::startup::App;

pub async fn run(config: Config) -> Result<(), CliError> {
    let bind = config.bind.clone();
    let metrics_bind = config.metrics_bind;
    if metrics_bind.is_some() {
        // Before the first request, so that none goes uncounted.
        crate::monitoring::install();
    }
    let app = App::build(config).await?;
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|e| CliError::failed(format!("could not listen on {bind}"), e))?;
    if let Some(address) = metrics_bind {
        let metrics = TcpListener::bind(address).await.map_err(|e| {
            CliError::failed(format!("could not listen on {address} (METRICS_BIND)"), e)
        })?;
        tracing::info!("metrics on http://{address}/metrics");
        let serving = app.serve_metrics(metrics);
        tokio::spawn(async move {
            if let Err(err) = serving.await {
                tracing::error!(error = %err, "the metrics listener stopped");
            }
        });
    }
    match &app.config.stripe {
        Some(stripe) => tracing::info!(api_base = %stripe.api_base, "Stripe is configured"),
        None => tracing::warn!("STRIPE_SECRET is not set: Stripe actions will say so"),
    }
    // The address bound, not the one asked for: `BIND=127.0.0.1:0` takes a free
    // port, and this line says which.
    let listening = listener
        .local_addr()
        .map_or_else(|_| bind.clone(), |address| address.to_string());
    tracing::info!(
        database = app.customers.database_kind(),
        "listening on http://{listening}"
    );
    app.serve(listener)
        .await
        .map_err(|e| CliError::failed("server error", e))
}
