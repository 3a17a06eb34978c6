//! `stripe-sync user:create --email E --name N [--password-stdin]`

use std::io::BufRead;

use secrecy::SecretString;

use super::CliError;
use crate::accounts::AccountError;
use crate::config::Config;
use crate::domain::{UserEmail, UserName, check_new_password};
use crate::startup::App;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Email address to sign in with
    #[arg(long)]
    pub email: String,
    /// Display name (also the Stripe customer's name)
    #[arg(long)]
    pub name: String,
    /// Read the password from the first line of standard input instead of a prompt
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(config: Config, args: Args, stdin: &mut dyn BufRead) -> Result<(), CliError> {
    let name = UserName::parse(&args.name).map_err(CliError::Usage)?;
    let email = UserEmail::parse(&args.email).map_err(CliError::Usage)?;
    let password = read_new_password(args.password_stdin, stdin)?;
    let id = create(config, &name, &email, password).await?;
    println!("created user {id} <{}>", email.as_str());
    Ok(())
}

async fn create(
    config: Config,
    name: &UserName,
    email: &UserEmail,
    password: SecretString,
) -> Result<i64, CliError> {
    let app = App::build(config).await?;
    match app.accounts.create(name, email, password).await {
        Ok(user) => Ok(user.id),
        Err(AccountError::EmailTaken) => Err(CliError::Usage(format!(
            "a user with email {} already exists",
            email.as_str()
        ))),
        Err(err) => Err(CliError::failed("could not create the user", err)),
    }
}

/// A new password from the first line of standard input, or prompted for twice;
/// refused (exit 2) when it breaks the rules a page's form has.
pub(super) fn read_new_password(
    from_stdin: bool,
    stdin: &mut dyn BufRead,
) -> Result<SecretString, CliError> {
    let password = if from_stdin {
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .map_err(|e| CliError::failed("could not read the password", e))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        prompt_password()?
    };
    check_new_password(&password, &password).map_err(CliError::Usage)?;
    Ok(SecretString::from(password))
}

fn prompt_password() -> Result<String, CliError> {
    let password = rpassword::prompt_password("Password: ")
        .map_err(|e| CliError::failed("could not read the password", e))?;
    let confirmation = rpassword::prompt_password("Confirm password: ")
        .map_err(|e| CliError::failed("could not read the password", e))?;
    check_new_password(&password, &confirmation).map_err(CliError::Usage)?;
    Ok(password)
}
