//! Account fields, parsed once at the edge so the rest of the code can trust them.

/// What a person is told of a failure of ours: nothing of its cause.
pub const INTERNAL_MESSAGE: &str =
    "Something went wrong on our side, nothing was changed. Please try again.";

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
        check_text("Name", name, Lines::One)?;
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
        check_text("Email", &email, Lines::One)?;
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

/// Whether a text field may hold line breaks (and tabs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Refuses text no form field should carry: NUL and the other control characters
/// (line breaks and tabs only where a field has several lines), and direction
/// controls left open or closed unopened (U+202A–U+202E, U+2066–U+2069), which can
/// make a name display as something else. `label` names the field in the message.
pub fn check_text(label: &str, text: &str, lines: Lines) -> Result<(), String> {
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(format!("{label} must not contain control characters."));
    }
    // Embeddings and overrides end with PDF; isolates with PDI.
    let mut open = Vec::new();
    for c in text.chars() {
        match c {
            '\u{202A}'..='\u{202E}' if c != '\u{202C}' => open.push('\u{202C}'),
            '\u{2066}'..='\u{2068}' => open.push('\u{2069}'),
            '\u{202C}' | '\u{2069}' if open.pop() != Some(c) => {
                return Err(unbalanced(label));
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(unbalanced(label));
    }
    Ok(())
}

fn unbalanced(label: &str) -> String {
    format!("{label} has a text-direction control that is not closed where it should be.")
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
    fn control_characters_are_refused_except_line_breaks_where_lines_are_allowed() {
        for bad in ["a\0b", "a\u{1}b", "a\u{7f}b", "a\nb", "a\tb"] {
            assert!(check_text("Title", bad, Lines::One).is_err(), "{bad:?}");
        }
        assert!(check_text("Description", "one\r\ntwo\tthree", Lines::Many).is_ok());
        assert!(check_text("Description", "nul\0", Lines::Many).is_err());
        let message = check_text("Title", "a\0", Lines::One).unwrap_err();
        assert!(message.starts_with("Title "), "{message}");
    }

    #[test]
    fn direction_controls_must_be_closed_in_order() {
        for bad in [
            "evil\u{202E}gpj.exe",
            "\u{202C}",
            "\u{2066}open",
            "\u{2067}a\u{202C}",
            "\u{202B}\u{2066}a\u{202C}\u{2069}",
        ] {
            assert!(check_text("Name", bad, Lines::One).is_err(), "{bad:?}");
        }
        for good in [
            "Ann",
            "\u{202B}שלום\u{202C}",
            "\u{2067}\u{202A}x\u{202C}\u{2069}",
            "عربي",
        ] {
            assert!(check_text("Name", good, Lines::One).is_ok(), "{good:?}");
        }
        assert!(UserName::parse("Ann\u{202E}").is_err());
        assert!(UserName::parse("Ann\0").is_err());
    }

    #[test]
    fn passwords_need_length_and_a_matching_confirmation() {
        assert!(check_new_password("short", "short").is_err());
        assert!(check_new_password("long enough", "long enougH").is_err());
        assert!(check_new_password("long enough", "long enough").is_ok());
    }
}
