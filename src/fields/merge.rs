//! The three-way merge, field by field. With L the local value, S what we last
//! know Stripe holds and B the base (the value both last agreed on):
//!
//! | L = B | S = B | L = S | verdict                                           |
//! |-------|-------|-------|---------------------------------------------------|
//! |       |       | yes   | agree (the base moves to it)                      |
//! | no    | yes   |       | push L                                            |
//! | yes   | no    |       | pull S (the login email is never pulled: shown)   |
//! | no    | no    | no    | conflict, unless the caller prefers a side        |
//!
//! A push that Stripe's published request types cannot take (a shipping group
//! without its name, a cleared locales list) is withheld instead: not sent, its
//! base kept, so it is reported again until it can go ([`super::contract`]).
//!
//! S unknown (no copy read since the field was mapped) counts as S = B: there is
//! no sign Stripe changed it. A field with no base yet (a user from before the
//! map, adopted or upgraded) starts from the local value, so nothing is pushed
//! for it until it changes; except that a value only the app has is pushed
//! (Stripe's side is empty: nothing there to lose), and for name and email
//! what was last pushed (by its hash) decides, as it did before bases existed.

use serde::{Deserialize, Serialize};

use super::contract::{self, Withheld};
use super::map::{FieldMap, Mapping, StripeField};
use super::values::Values;
use crate::domain::UserName;

/// Which side wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    Local,
    Stripe,
}

impl Prefer {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(Prefer::Local),
            "stripe" => Some(Prefer::Stripe),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Prefer::Local => "local",
            Prefer::Stripe => "stripe",
        }
    }
}

/// How conflicts are settled in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle<'a> {
    /// They are reported and left alone.
    Report,
    /// Every conflict goes to one side (`--prefer`).
    All(Prefer),
    /// One field's conflict goes to one side (the page's buttons).
    Field(&'a str, Prefer),
}

impl Settle<'_> {
    fn prefer(&self, key: &str) -> Option<Prefer> {
        match *self {
            Settle::Report => None,
            Settle::All(side) => Some(side),
            Settle::Field(field, side) => (field == key).then_some(side),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Agree,
    Push,
    Pull,
    /// Stripe changed it and keeps it; the local column does not take it.
    ChangedInStripe,
    Conflict,
    /// A push Stripe's published types cannot take (see [`super::contract`]):
    /// not sent, the base kept, so it is reported again until it can be.
    Withheld(Withheld),
}

/// One field's sides and what to do about them.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub field: StripeField,
    pub column: String,
    /// The column takes no NULL (a cleared value is written as `''`).
    pub not_null: bool,
    pub local: String,
    /// `None` when no copy read from Stripe says.
    pub stripe: Option<String>,
    /// The base it was decided from (stored, or where a new field starts).
    pub base: String,
    /// The base once its verdict is carried out.
    pub agreed: String,
    /// Whether a base is stored, or Stripe's side known: a field with neither
    /// (mapped since the last copy was read) gets no base until one of them is.
    pub base_known: bool,
    pub verdict: Verdict,
}

/// The sides of a user's fields, as stored.
#[derive(Debug, Clone, Default)]
pub struct Sides<'a> {
    /// In the map's order, as read from the columns (NULL as `None`).
    pub local: &'a [Option<String>],
    /// The last copy of the customer read, if any says these fields.
    pub stripe: Option<&'a Values>,
    /// Name and email only: the stored snapshot's values, for a copy taken
    /// before the other fields were kept.
    pub stripe_name_email: Option<(&'a str, &'a str)>,
    pub base: Option<&'a Values>,
    /// Whether the hash of what was last pushed matches the local name and
    /// email (for users from before bases were kept).
    pub pushed_matches_local: bool,
}

/// What to do for a user.
#[derive(Debug, Clone)]
pub struct Plan {
    pub fields: Vec<FieldPlan>,
    /// The base once the pushes and pulls are done.
    pub base: Values,
    /// Whether that base differs from the one stored.
    pub base_moves: bool,
    stored_base: Option<Values>,
    nothing_read: bool,
}

impl Plan {
    pub fn pushes(&self) -> impl Iterator<Item = &FieldPlan> {
        self.with(Verdict::Push)
    }

    pub fn pulls(&self) -> impl Iterator<Item = &FieldPlan> {
        self.with(Verdict::Pull)
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &FieldPlan> {
        self.with(Verdict::Conflict)
    }

    fn with(&self, verdict: Verdict) -> impl Iterator<Item = &FieldPlan> {
        self.fields.iter().filter(move |f| f.verdict == verdict)
    }

    pub fn pushes_anything(&self) -> bool {
        self.pushes().next().is_some()
    }

    /// Why fields that would have been pushed were not, each reason once.
    pub fn withheld(&self) -> Vec<Withheld> {
        let mut reasons: Vec<Withheld> = self
            .fields
            .iter()
            .filter_map(|f| match f.verdict {
                Verdict::Withheld(reason) => Some(reason),
                _ => None,
            })
            .collect();
        reasons.sort();
        reasons.dedup();
        reasons
    }

    /// The base with only the pushes done: what a successful push records before
    /// Stripe's answer is settled.
    pub fn base_after_push(&self) -> Values {
        self.fields
            .iter()
            .filter(|f| f.base_known || f.verdict == Verdict::Push)
            .map(|f| {
                let value = match f.verdict {
                    Verdict::Push => &f.local,
                    _ => &f.base,
                };
                (f.field.key(), value.clone())
            })
            .collect()
    }

    /// The base with everything but the pushes done (pulls, agreements, kept
    /// sides), and whether it differs from the stored one.
    pub fn base_without_push(&self) -> (Values, bool) {
        let base: Values = self
            .fields
            .iter()
            .filter(|f| f.base_known)
            .map(|f| {
                let value = match f.verdict {
                    Verdict::Push => &f.base,
                    _ => &f.agreed,
                };
                (f.field.key(), value.clone())
            })
            .collect();
        let moves = differs(&base, self.stored_base.as_ref(), self.nothing_read);
        (base, moves)
    }

    /// Nothing to send, nothing to write.
    pub fn is_quiet(&self) -> bool {
        !self.base_moves
            && self
                .fields
                .iter()
                .all(|f| !matches!(f.verdict, Verdict::Push | Verdict::Pull))
    }
}

/// Decides every mapped field. `force` pushes every field Stripe did not change.
pub fn plan(map: &FieldMap, sides: &Sides<'_>, settle: Settle<'_>, force: bool) -> Plan {
    let mut fields = Vec::with_capacity(map.len());
    for (index, mapping) in map.mappings().iter().enumerate() {
        let field = &mapping.field;
        let key = field.key();
        let raw = sides.local.get(index).and_then(|v| v.as_deref());
        let local = super::values::local_value(field, raw);
        let stripe = stripe_value(field, &key, sides);
        let stored_base = sides.base.and_then(|b| b.get(&key)).cloned();
        let b = stored_base
            .clone()
            .unwrap_or_else(|| starting_base(field, &local, stripe.as_deref(), sides));
        let s = stripe.clone().unwrap_or_else(|| b.clone());
        let b_kept = b.clone();
        let mut verdict = if local == s {
            Verdict::Agree
        } else if s == b {
            Verdict::Push
        } else if local == b {
            take_stripe(mapping, &s)
        } else {
            match settle.prefer(&key) {
                None => Verdict::Conflict,
                Some(Prefer::Local) => Verdict::Push,
                Some(Prefer::Stripe) => take_stripe(mapping, &s),
            }
        };
        if force && verdict == Verdict::Agree {
            verdict = Verdict::Push;
        }
        let agreed = match verdict {
            Verdict::Agree | Verdict::Push => local.clone(),
            Verdict::Pull => s.clone(),
            // Kept apart on purpose: the base is the local value, so Stripe's
            // stays "changed in Stripe" and is never pushed over.
            Verdict::ChangedInStripe if local != b && settle.prefer(&key).is_some() => {
                local.clone()
            }
            Verdict::ChangedInStripe | Verdict::Conflict | Verdict::Withheld(_) => b,
        };
        let base_known = stored_base.is_some() || stripe.is_some();
        fields.push(FieldPlan {
            field: field.clone(),
            column: mapping.column.clone(),
            not_null: mapping.not_null,
            local,
            stripe,
            base: b_kept,
            agreed,
            base_known,
            verdict,
        });
    }
    withhold(&mut fields);
    let base: Values = fields
        .iter()
        .filter(|f| f.base_known || f.verdict == Verdict::Push)
        .map(|f| (f.field.key(), f.agreed.clone()))
        .collect();
    let nothing_read = sides.stripe.is_none() && sides.stripe_name_email.is_none();
    let base_moves = differs(&base, sides.base, nothing_read);
    Plan {
        fields,
        base,
        base_moves,
        stored_base: sides.base.cloned(),
        nothing_read,
    }
}

/// Turns the pushes Stripe's published types cannot take into
/// [`Verdict::Withheld`]: a shipping group whose name would go empty, and a
/// cleared locales list (which, when Stripe's is empty too, is no push at all).
fn withhold(fields: &mut [FieldPlan]) {
    let sent = |f: &FieldPlan| match f.verdict {
        Verdict::Push => f.local.clone(),
        _ => f.stripe.clone().unwrap_or_default(),
    };
    let shipping: Vec<(String, String)> = fields
        .iter()
        .filter(|f| f.field.is_shipping())
        .map(|f| (f.field.key(), sent(f)))
        .collect();
    let pushes_shipping = fields
        .iter()
        .any(|f| f.field.is_shipping() && f.verdict == Verdict::Push);
    let pairs = shipping.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let shipping_held = pushes_shipping && contract::shipping_lacks_name(pairs);
    for field in fields.iter_mut().filter(|f| f.verdict == Verdict::Push) {
        let reason = if shipping_held && field.field.is_shipping() {
            Withheld::ShippingWithoutName
        } else if field.field == StripeField::PreferredLocales && field.local.is_empty() {
            if field.stripe.as_deref().unwrap_or(&field.base).is_empty() {
                field.verdict = Verdict::Agree;
                continue;
            }
            Withheld::LocalesNotClearable
        } else {
            continue;
        };
        field.verdict = Verdict::Withheld(reason);
        field.agreed = field.base.clone();
    }
}

/// Whether `base` says anything the stored one does not. A user with no base and
/// nothing read from Stripe has nothing to record: the base it would get is the
/// one it starts from anyway (the local values, and the hash for name and email).
fn differs(base: &Values, stored: Option<&Values>, nothing_read: bool) -> bool {
    match stored {
        None => !nothing_read,
        Some(stored) => base
            .iter()
            .any(|(key, value)| stored.get(key) != Some(value)),
    }
}

/// Stripe's value: pulled, or (the login email, a name the app would refuse, a
/// value longer than the column takes) shown as changed in Stripe.
fn take_stripe(mapping: &Mapping, stripe: &str) -> Verdict {
    let fits = mapping.fits(stripe)
        && match &mapping.field {
            StripeField::Name => UserName::parse(stripe).is_ok_and(|name| name.as_str() == stripe),
            field => field.pulls(),
        };
    if fits {
        Verdict::Pull
    } else {
        Verdict::ChangedInStripe
    }
}

fn stripe_value(field: &StripeField, key: &str, sides: &Sides<'_>) -> Option<String> {
    if let Some(values) = sides.stripe {
        return Some(values.get(key).cloned().unwrap_or_default());
    }
    let (name, email) = sides.stripe_name_email?;
    match field {
        StripeField::Name => Some(name.to_string()),
        StripeField::Email => Some(email.to_string()),
        _ => None,
    }
}

/// The base of a field that has none yet (see the module's comment).
fn starting_base(field: &StripeField, local: &str, stripe: Option<&str>, sides: &Sides) -> String {
    match field {
        StripeField::Name | StripeField::Email if !sides.pushed_matches_local => {
            stripe.unwrap_or("").to_string()
        }
        StripeField::Name | StripeField::Email => local.to_string(),
        _ if stripe == Some("") => String::new(),
        _ => local.to_string(),
    }
}
