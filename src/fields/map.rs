//! `STRIPE_CUSTOMER_FIELDS`: which Stripe customer field is which `users` column.

use std::fmt;

use crate::db::dialect::catalog::ColumnFacts;

/// A part of a Stripe address (`address.*`, `shipping.address.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressPart {
    Line1,
    Line2,
    City,
    State,
    PostalCode,
    Country,
}

impl AddressPart {
    pub const ALL: [AddressPart; 6] = [
        AddressPart::Line1,
        AddressPart::Line2,
        AddressPart::City,
        AddressPart::State,
        AddressPart::PostalCode,
        AddressPart::Country,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AddressPart::Line1 => "line1",
            AddressPart::Line2 => "line2",
            AddressPart::City => "city",
            AddressPart::State => "state",
            AddressPart::PostalCode => "postal_code",
            AddressPart::Country => "country",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|part| part.name() == name)
    }
}

/// A Stripe customer field the map may name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StripeField {
    Name,
    Email,
    Phone,
    Description,
    PreferredLocales,
    Address(AddressPart),
    ShippingName,
    ShippingPhone,
    ShippingAddress(AddressPart),
    Metadata(String),
}

/// The metadata key that links a customer to its user: ours, never mapped.
pub const USER_ID_KEY: &str = "user_id";

impl StripeField {
    /// Its name in the map, in reports and on the page: `address.city`.
    pub fn key(&self) -> String {
        match self {
            StripeField::Name => "name".into(),
            StripeField::Email => "email".into(),
            StripeField::Phone => "phone".into(),
            StripeField::Description => "description".into(),
            StripeField::PreferredLocales => "preferred_locales".into(),
            StripeField::Address(part) => format!("address.{}", part.name()),
            StripeField::ShippingName => "shipping.name".into(),
            StripeField::ShippingPhone => "shipping.phone".into(),
            StripeField::ShippingAddress(part) => format!("shipping.address.{}", part.name()),
            StripeField::Metadata(key) => format!("metadata.{key}"),
        }
    }

    pub fn parse(key: &str) -> Result<Self, String> {
        let unknown = || {
            format!(
                "STRIPE_CUSTOMER_FIELDS names {key:?}, which is not a Stripe customer field we \
                 sync (phone, description, preferred_locales, address.*, shipping.name, \
                 shipping.phone, shipping.address.*, metadata.KEY)"
            )
        };
        let field = match key {
            "name" => StripeField::Name,
            "email" => StripeField::Email,
            "phone" => StripeField::Phone,
            "description" => StripeField::Description,
            "preferred_locales" => StripeField::PreferredLocales,
            "shipping.name" => StripeField::ShippingName,
            "shipping.phone" => StripeField::ShippingPhone,
            _ => {
                if let Some(part) = key.strip_prefix("shipping.address.") {
                    StripeField::ShippingAddress(AddressPart::parse(part).ok_or_else(unknown)?)
                } else if let Some(part) = key.strip_prefix("address.") {
                    StripeField::Address(AddressPart::parse(part).ok_or_else(unknown)?)
                } else if let Some(meta) = key.strip_prefix("metadata.") {
                    check_metadata_key(meta)?;
                    StripeField::Metadata(meta.to_string())
                } else {
                    return Err(unknown());
                }
            }
        };
        Ok(field)
    }

    /// What the settings page calls it.
    pub fn label(&self) -> String {
        let address = |part: AddressPart| match part {
            AddressPart::Line1 => "address line 1",
            AddressPart::Line2 => "address line 2",
            AddressPart::City => "city",
            AddressPart::State => "state",
            AddressPart::PostalCode => "postal code",
            AddressPart::Country => "country",
        };
        match self {
            StripeField::Name => "Name".into(),
            StripeField::Email => "Email".into(),
            StripeField::Phone => "Phone".into(),
            StripeField::Description => "Description".into(),
            StripeField::PreferredLocales => "Preferred languages".into(),
            StripeField::Address(part) => capitalized(address(*part)),
            StripeField::ShippingName => "Shipping name".into(),
            StripeField::ShippingPhone => "Shipping phone".into(),
            StripeField::ShippingAddress(part) => format!("Shipping {}", address(*part)),
            StripeField::Metadata(key) => format!("Metadata {key}"),
        }
    }

    /// Whether a value Stripe holds may be written into the local column. The
    /// login email never takes Stripe's: a billing email changed in Stripe is
    /// shown and reported, and stays Stripe's.
    pub fn pulls(&self) -> bool {
        *self != StripeField::Email
    }

    pub fn is_shipping(&self) -> bool {
        matches!(
            self,
            StripeField::ShippingName
                | StripeField::ShippingPhone
                | StripeField::ShippingAddress(_)
        )
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Stripe's metadata keys: at most 40 characters, no square brackets.
fn check_metadata_key(key: &str) -> Result<(), String> {
    if key == USER_ID_KEY {
        return Err(
            "STRIPE_CUSTOMER_FIELDS maps metadata.user_id, which stripe-sync keeps itself \
             (it links a customer to its user)"
                .into(),
        );
    }
    let valid = !key.is_empty()
        && key.chars().count() <= 40
        && !key.chars().any(|c| c == '[' || c == ']' || c.is_control());
    if !valid {
        return Err(format!(
            "STRIPE_CUSTOMER_FIELDS names metadata key {key:?}: Stripe's keys are 1 to 40 \
             characters without square brackets"
        ));
    }
    Ok(())
}

/// One field of the map and the `users` column that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub field: StripeField,
    pub column: String,
    /// The column takes no NULL: a value Stripe cleared is written as `''`.
    pub not_null: bool,
    /// The most characters the column takes: a longer value from Stripe is
    /// shown, never pulled (the write would fail).
    pub max_chars: Option<usize>,
}

impl Mapping {
    fn new(field: StripeField, column: &str) -> Self {
        Mapping {
            field,
            column: column.to_string(),
            not_null: false,
            max_chars: None,
        }
    }

    /// Whether the column can take `value` as it is.
    pub fn fits(&self, value: &str) -> bool {
        self.max_chars
            .is_none_or(|max| value.chars().count() <= max)
    }
}

/// The fields synced, `name` and `email` first, then the map's in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    mappings: Vec<Mapping>,
}

impl Default for FieldMap {
    /// Name and email only.
    fn default() -> Self {
        FieldMap {
            mappings: vec![
                Mapping::new(StripeField::Name, "name"),
                Mapping::new(StripeField::Email, "email"),
            ],
        }
    }
}

impl FieldMap {
    /// Parses `stripe_field=users_column` pairs, comma-separated. The message of an
    /// error names the field or column at fault, in one line.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut map = FieldMap::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, column)) = pair.split_once('=') else {
                return Err(format!(
                    "STRIPE_CUSTOMER_FIELDS: {pair:?} is not stripe_field=users_column"
                ));
            };
            let (key, column) = (key.trim(), column.trim());
            let field = StripeField::parse(key)?;
            check_column(column)?;
            if matches!(field, StripeField::Name | StripeField::Email) {
                if column == key {
                    continue;
                }
                return Err(format!(
                    "STRIPE_CUSTOMER_FIELDS maps {key} to {column:?}: name and email are always \
                     synced from users.name and users.email"
                ));
            }
            if map.mappings.iter().any(|m| m.field == field) {
                return Err(format!("STRIPE_CUSTOMER_FIELDS names {key} twice"));
            }
            if let Some(other) = map.mappings.iter().find(|m| m.column == column) {
                return Err(format!(
                    "STRIPE_CUSTOMER_FIELDS maps column {column} to both {} and {key}",
                    other.field.key()
                ));
            }
            map.mappings.push(Mapping::new(field, column));
        }
        let has = |field: &StripeField| map.mappings.iter().any(|m| m.field == *field);
        if map.mappings.iter().any(|m| m.field.is_shipping()) && !has(&StripeField::ShippingName) {
            return Err(
                "STRIPE_CUSTOMER_FIELDS maps shipping fields without shipping.name, which Stripe \
                 requires with any shipping detail"
                    .into(),
            );
        }
        Ok(map)
    }

    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// The columns beyond `name` and `email`, which a database may lack.
    pub fn extra_columns(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings
            .iter()
            .filter(|m| !matches!(m.field, StripeField::Name | StripeField::Email))
    }

    pub fn find(&self, key: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.field.key() == key)
    }

    /// The same map with what the database says of the columns beyond name and
    /// email (`facts` in [`FieldMap::extra_columns`]' order).
    pub fn with_column_facts(&self, facts: &[ColumnFacts]) -> Self {
        let mut map = self.clone();
        let extra = map
            .mappings
            .iter_mut()
            .filter(|m| !matches!(m.field, StripeField::Name | StripeField::Email));
        for (mapping, facts) in extra.zip(facts) {
            mapping.not_null = !facts.nullable;
            mapping.max_chars = facts.max_chars.and_then(|max| usize::try_from(max).ok());
        }
        map
    }
}

/// A column name as SQL can take it without quoting games: letters, digits and
/// underscores, not starting with a digit, at most 64 characters.
fn check_column(column: &str) -> Result<(), String> {
    let valid = !column.is_empty()
        && column.len() <= 64
        && column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !column.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "STRIPE_CUSTOMER_FIELDS names column {column:?}: a column is letters, digits and \
             underscores"
        ))
    }
}

impl fmt::Display for FieldMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = self
            .mappings
            .iter()
            .map(|m| format!("{}={}", m.field.key(), m.column))
            .collect();
        f.write_str(&pairs.join(","))
    }
}
