//! Which customer fields are synced, and how each one's two sides are settled.
//!
//! `STRIPE_CUSTOMER_FIELDS` maps Stripe's customer fields to columns of `users`
//! (`phone=phone,address.city=city,metadata.team=team_name`); `name` and `email`
//! are always synced from the columns of those names. Every field is one text
//! value: an absent or empty value is `""` on both sides, and a list
//! (`preferred_locales`) is its items joined by commas.
//!
//! [`map`] parses and checks the map, [`values`] reads a field's value from each
//! side, and [`merge`] decides, field by field, whether to push, pull, leave
//! alone or report a conflict, from the local value, Stripe's and the base (the
//! value both sides last agreed on).

pub mod contract;
pub mod map;
pub mod merge;
pub mod values;

#[cfg(test)]
mod tests;

pub use contract::Withheld;
pub use map::{FieldMap, Mapping, StripeField};
pub use merge::{FieldPlan, Prefer, Verdict};
pub use values::Values;
