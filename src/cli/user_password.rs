//! `stripe-sync user:password --email E [--password-stdin]`: an operator sets a
//! user's password (the user forgot theirs, or an account must be locked out of
//! every session at once).

use std::io::BufRead;

use super::CliError;
use super::user_create::read_new_password;
use crate::config::Config;
use crate::domain::UserEmail;
use crate::startup::App;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Email address of the user
    #[arg(long)]
    pub email: String,
    /// Read the new password from the first line of standard input instead of a prompt
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(config: Config, args: Args, stdin: &mut dyn BufRead) -> Result<(), CliError> {
    let email = UserEmail::parse(&args.email).map_err(CliError::Usage)?;
    let app = App::build(config).await?;
    let user = app
        .accounts
        .find_by_email(email.as_str())
        .await
        .map_err(|e| CliError::failed("could not read the user", e))?
        .ok_or_else(|| CliError::Usage(format!("no user has email {}", email.as_str())))?;
    let password = read_new_password(args.password_stdin, stdin)?;
    app.accounts
        .set_password(user.id, password)
        .await
        .map_err(|e| CliError::failed("could not set the password", e))?;
    println!(
        "password set for user {} <{}>; every session of theirs is signed out",
        user.id,
        email.as_str()
    );
    Ok(())
}
