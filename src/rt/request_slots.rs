//! [`RequestSlots`]: the driver's per-request state of one connection, kept at the index of
//! the engine's own slot for the request ([`RequestKey::index`]) instead of in a hash map.
//! An engine reuses its lowest free slots, so the table is as long as the most requests the
//! connection ever had in flight at once; a lookup is an index and a key comparison, and a
//! connection that has served requests one at a time keeps one entry, not a hash table's
//! four buckets.

use crate::channel::RequestKey;

/// Values of type `T` by [`RequestKey`], for the requests in flight on one connection.
pub(crate) struct RequestSlots<T> {
    entries: Vec<Option<(RequestKey, T)>>,
}

impl<T> Default for RequestSlots<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T> RequestSlots<T> {
    /// Stores `value` for `key`, replacing what a stale key of the same slot left.
    pub(crate) fn insert(&mut self, key: RequestKey, value: T) {
        let index = key.index();
        if index >= self.entries.len() {
            if self.entries.capacity() == 0 {
                // One entry for a connection without multiplexing, not a `Vec`'s first four.
                self.entries.reserve_exact(1);
            }
            // Past the first, amortized growth: a multiplexing peer adds slots one by one.
            self.entries.resize_with(index + 1, || None);
        }
        self.entries[index] = Some((key, value));
    }

    /// The value of `key`, unless the request is gone (a stale key finds nothing).
    pub(crate) fn get_mut(&mut self, key: RequestKey) -> Option<&mut T> {
        match self.entries.get_mut(key.index())? {
            Some((k, value)) if *k == key => Some(value),
            _ => None,
        }
    }

    /// Takes the value of `key` out.
    pub(crate) fn remove(&mut self, key: RequestKey) -> Option<T> {
        let entry = self.entries.get_mut(key.index())?;
        match entry {
            Some((k, _)) if *k == key => entry.take().map(|(_, value)| value),
            _ => None,
        }
    }

    /// The keys of every request stored.
    pub(crate) fn keys(&self) -> impl Iterator<Item = RequestKey> + '_ {
        self.entries.iter().flatten().map(|(key, _)| *key)
    }

    /// Every value stored.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().flatten().map(|(_, value)| value)
    }

    /// Takes every value out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.entries
            .iter_mut()
            .filter_map(Option::take)
            .map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_their_key_only() {
        let [a, b, a_again] = [
            RequestKey::for_tests(0, 0),
            RequestKey::for_tests(2, 0),
            RequestKey::for_tests(0, 1),
        ];
        let mut slots = RequestSlots::default();
        slots.insert(a, "a");
        assert_eq!(slots.entries.capacity(), 1);
        slots.insert(b, "b");
        assert_eq!(slots.get_mut(a), Some(&mut "a"));
        assert_eq!(slots.get_mut(b), Some(&mut "b"));
        // The same slot under a later generation is another request.
        assert_eq!(slots.get_mut(a_again), None);
        assert_eq!(slots.remove(a_again), None);
        assert_eq!(slots.keys().collect::<Vec<_>>(), [a, b]);
        assert_eq!(slots.remove(a), Some("a"));
        assert_eq!(slots.remove(a), None);
        assert_eq!(slots.get_mut(RequestKey::for_tests(9, 0)), None);
        slots.insert(a_again, "a2");
        assert_eq!(slots.values().copied().collect::<Vec<_>>(), ["a2", "b"]);
        assert_eq!(slots.drain().collect::<Vec<_>>(), ["a2", "b"]);
        assert_eq!(slots.keys().count(), 0);
    }

    #[test]
    fn slots_added_one_by_one_grow_the_table_geometrically() {
        let mut slots = RequestSlots::default();
        let mut reallocations = 0;
        for slot in 0..1024 {
            let capacity = slots.entries.capacity();
            slots.insert(RequestKey::for_tests(slot, 0), slot);
            reallocations += usize::from(slots.entries.capacity() != capacity);
        }
        // 1, then doubling: a dozen, not one per slot.
        assert!(reallocations <= 12, "{reallocations} reallocations");
    }
}
