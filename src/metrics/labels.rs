//! The small label sets the runtime reports with, beside the ones the engines already define in
//! `channel::events`: send modes, slab kinds, I/O backends, status classes, refusal statuses, and
//! the listener names registered at startup. Each has a fixed `&'static str` label value and an
//! index, so [`super::WorkerMetrics`] can keep one pre-registered handle per value in an array.

use crate::proto::fastcgi::ProtocolStatus;

/// How a send reached the kernel (the paths `rt::send` measured and the runtime uses).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SendMode {
    /// io_uring backend: one `send(2)` from the worker thread took all of it.
    Direct,
    /// io_uring backend: the socket buffer was full, io_uring writes carried the rest.
    Ring,
    /// epoll backend: a `write` through tokio.
    Epoll,
    /// io_uring backend: `IORING_OP_SEND_ZC` carried some or all of it (`rt::zerocopy`).
    ZeroCopy,
}

impl SendMode {
    /// Every value, in index order.
    pub const ALL: [Self; 4] = [Self::Direct, Self::Ring, Self::Epoll, Self::ZeroCopy];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Ring => "ring",
            Self::Epoll => "epoll",
            Self::ZeroCopy => "zerocopy",
        }
    }
}

/// Which per-worker slab a [`super::WorkerMetrics::set_slab`] call reports.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SlabKind {
    /// The request table.
    Requests,
    /// The connection table.
    Connections,
}

impl SlabKind {
    /// Every value, in index order.
    pub const ALL: [Self; 2] = [Self::Requests, Self::Connections];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Connections => "connections",
        }
    }
}

/// The I/O backend the workers run on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IoBackend {
    /// tokio-uring (io_uring).
    IoUring,
    /// Plain tokio (epoll), the fallback.
    Epoll,
}

impl IoBackend {
    /// Every value, in index order.
    pub const ALL: [Self; 2] = [Self::IoUring, Self::Epoll];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

/// Label values of `status_class`, indexed by [`status_class_index`].
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// The index into [`STATUS_CLASSES`] of an HTTP status code. Codes outside 100..=599 (which
/// `http::StatusCode` allows up to 999) count as `other`.
pub fn status_class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

/// Label values of `protocol_status` on the refusals counter, indexed by [`refusal_index`].
pub const REFUSAL_STATUSES: [&str; 4] = ["overloaded", "cant_mpx_conn", "unknown_role", "other"];

/// The index into [`REFUSAL_STATUSES`] of a refusal's FastCGI protocol status. Anything but the
/// three refusal statuses (a bug in the engine, not peer input) counts as `other`.
pub fn refusal_index(status: ProtocolStatus) -> usize {
    match status {
        ProtocolStatus::OVERLOADED => 0,
        ProtocolStatus::CANT_MPX_CONN => 1,
        ProtocolStatus::UNKNOWN_ROLE => 2,
        _ => 3,
    }
}

/// A listener's place in the [`ListenerNames`] it was added to: a small index, cheap to copy
/// into every connection, that [`super::WorkerMetrics`] turns into the `listener` label. The
/// default is the first name added (index 0); with an empty [`ListenerNames`] it counts nowhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ListenerLabel(u32);

impl ListenerLabel {
    /// The index into the [`ListenerNames`] it came from.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The names of the configured listeners (e.g. `fastcgi:127.0.0.1:9000`,
/// `scgi:unix:/run/ringgate/scgi.sock`), built once at startup and given to every
/// [`super::WorkerMetrics::new`], so all workers agree on the labels.
#[derive(Clone, Debug, Default)]
pub struct ListenerNames {
    names: Vec<Box<str>>,
}

impl ListenerNames {
    /// No listeners yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a listener name and returns its label; adding a name already present returns the
    /// label it already has.
    pub fn add(&mut self, name: &str) -> ListenerLabel {
        let index = match self.names.iter().position(|n| **n == *name) {
            Some(i) => i,
            None => {
                self.names.push(name.into());
                self.names.len() - 1
            }
        };
        // Invariant: a config cannot name 2^32 listeners (each needs a socket).
        ListenerLabel(u32::try_from(index).expect("fewer than 2^32 listeners"))
    }

    /// The name behind a label, if it came from this set.
    pub fn name(&self, label: ListenerLabel) -> Option<&str> {
        self.names.get(label.index()).map(|n| &**n)
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names in label order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_cover_every_u16() {
        assert_eq!(STATUS_CLASSES[status_class_index(100)], "1xx");
        assert_eq!(STATUS_CLASSES[status_class_index(199)], "1xx");
        assert_eq!(STATUS_CLASSES[status_class_index(200)], "2xx");
        assert_eq!(STATUS_CLASSES[status_class_index(304)], "3xx");
        assert_eq!(STATUS_CLASSES[status_class_index(404)], "4xx");
        assert_eq!(STATUS_CLASSES[status_class_index(599)], "5xx");
        assert_eq!(STATUS_CLASSES[status_class_index(600)], "other");
        assert_eq!(STATUS_CLASSES[status_class_index(99)], "other");
        assert_eq!(STATUS_CLASSES[status_class_index(0)], "other");
        assert_eq!(STATUS_CLASSES[status_class_index(u16::MAX)], "other");
    }

    #[test]
    fn refusal_statuses_map_to_their_labels() {
        assert_eq!(
            REFUSAL_STATUSES[refusal_index(ProtocolStatus::OVERLOADED)],
            "overloaded"
        );
        assert_eq!(
            REFUSAL_STATUSES[refusal_index(ProtocolStatus::CANT_MPX_CONN)],
            "cant_mpx_conn"
        );
        assert_eq!(
            REFUSAL_STATUSES[refusal_index(ProtocolStatus::UNKNOWN_ROLE)],
            "unknown_role"
        );
        assert_eq!(
            REFUSAL_STATUSES[refusal_index(ProtocolStatus::REQUEST_COMPLETE)],
            "other"
        );
        assert_eq!(
            REFUSAL_STATUSES[refusal_index(ProtocolStatus(200))],
            "other"
        );
    }

    #[test]
    fn listener_names_dedup_and_index() {
        let mut names = ListenerNames::new();
        let a = names.add("fastcgi:127.0.0.1:9000");
        let b = names.add("scgi:127.0.0.1:4000");
        assert_eq!(names.add("fastcgi:127.0.0.1:9000"), a);
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!(names.name(b), Some("scgi:127.0.0.1:4000"));
        assert_eq!(names.len(), 2);
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            ["fastcgi:127.0.0.1:9000", "scgi:127.0.0.1:4000"]
        );
        let mut other = ListenerNames::new();
        other.add("x");
        other.add("y");
        let c = other.add("z");
        assert_eq!(names.name(c), None);
    }
}
