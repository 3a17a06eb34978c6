//! A set of user ids that stays small at any size: a compressed bitmap
//! (roaring), a few bits per id where ids are dense, as a table's
//! auto-increment ids are. A bulk run over a million users keeps one or two of
//! these; as `HashSet<i64>` each would be some 30 MiB, here about 130 KiB.

use roaring::RoaringTreemap;

#[derive(Debug, Default, Clone)]
pub struct UserIds(RoaringTreemap);

impl UserIds {
    /// Adds `id`; false when it was in already.
    pub fn insert(&mut self, id: i64) -> bool {
        self.0.insert(key(id))
    }

    pub fn contains(&self, id: i64) -> bool {
        self.0.contains(key(id))
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Ids are positive; a negative one maps above them, still one to one.
fn key(id: i64) -> u64 {
    id as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_the_ids_put_in_negative_and_huge_ones_too() {
        let mut ids = UserIds::default();
        for id in [1, 2, 1_000_000, i64::MAX, -1, 0] {
            assert!(ids.insert(id), "{id} is new");
        }
        assert!(!ids.insert(2), "2 is in already");
        assert_eq!(ids.len(), 6);
        for id in [1, 2, 1_000_000, i64::MAX, -1, 0] {
            assert!(ids.contains(id), "{id}");
        }
        for id in [3, -2, i64::MIN, 999_999] {
            assert!(!ids.contains(id), "{id}");
        }
    }
}
