//! Account fields, parsed once at the edge so the rest of the code can trust them.

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

/// An email address, lower-cased so `Ann@Example.com` and `ann@example.com` are one
/// account. Deliberately loose: Stripe and the mail server are the real judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEmail(String);

pub const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_CHARS: usize = 256;

impl UserName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        if name.is_empty() {
            return Err("Name is required.".into());
        }
        if name.chars().count() > 100 {
            return Err("Name must be at most 100 characters.".into());
        }
        if name.chars().any(char::is_control) {
            return Err("Name must not contain control characters.".into());
        }
        Ok(UserName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl UserEmail {
    pub fn parse(input: &str) -> Result<Self, String> {
        let email = input.trim().to_lowercase();
        if email.is_empty() {
            return Err("Email is required.".into());
        }
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                    && !domain.ends_with('.') && !domain.contains('@'));
        if !valid {
            return Err("Enter a valid email address, like name@example.com.".into());
        }
        Ok(UserEmail(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password and its confirmation.
pub fn check_new_password(password: &str, confirmation: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(format!(
            "Password must be at least {PASSWORD_MIN_CHARS} characters."
        ));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(format!(
            "Password must be at most {PASSWORD_MAX_CHARS} characters."
        ));
    }
    if password != confirmation {
        return Err("Password and confirmation do not match.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            UserEmail::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(UserEmail::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_must_be_present_and_short() {
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert_eq!(UserName::parse(" Ann ").unwrap().as_str(), "Ann");
    }

    #[test]
    fn passwords_need_length_and_a_matching_confirmation() {
        assert!(check_new_password("short", "short").is_err());
        assert!(check_new_password("long enough", "long enougH").is_err());
        assert!(check_new_password("long enough", "long enough").is_ok());
    }
}
