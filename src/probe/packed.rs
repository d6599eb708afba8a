//! A published snapshot's components, packed.
//!
//! Parsers build a `Vec<Component>` (one small heap block per component);
//! [`crate::probe::StatusSnapshot::shared`] packs it into a
//! [`ComponentTable`]: every id, name and group back to back in one string,
//! and 16 bytes per component. At 10,000 targets × 20 components that is
//! ~7 MB less resident memory than a block per component (its header and
//! rounding cost more than the text), and a scrape reads each target's
//! components from one place instead of chasing 20 pointers.

use super::{Component, Severity};

/// Where one component's text ends, and what it is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    /// Ends of id, name and group in the table's text; the id starts where
    /// the previous component's group ends.
    id_end: u32,
    name_end: u32,
    group_end: u32,
    status: Severity,
    plain: bool,
}

/// Components packed into one string and a slice of fixed-size entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentTable {
    text: Box<str>,
    entries: Box<[Entry]>,
}

impl ComponentTable {
    /// Pack `components`. Their total text fits `u32` offsets: a body is
    /// bounded far below 4 GiB; anything past that would be dropped.
    pub fn pack(components: &[Component]) -> ComponentTable {
        let size: usize = components.iter().map(|c| c.text_len()).sum();
        let mut text = String::with_capacity(size.min(u32::MAX as usize));
        let mut entries = Vec::with_capacity(components.len());
        for c in components {
            if text.len() + c.text_len() > u32::MAX as usize {
                break;
            }
            let mut end = |s: &str| {
                text.push_str(s);
                u32::try_from(text.len()).unwrap_or(u32::MAX)
            };
            entries.push(Entry {
                id_end: end(c.id()),
                name_end: end(c.name()),
                group_end: end(c.group()),
                status: c.status,
                plain: c.is_plain(),
            });
        }
        ComponentTable {
            text: text.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Component `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<ComponentRef<'_>> {
        let e = self.entries.get(i)?;
        let start = match i.checked_sub(1) {
            Some(previous) => self.entries[previous].group_end as usize,
            None => 0,
        };
        let slice = |from: usize, to: u32| self.text.get(from..to as usize).unwrap_or_default();
        Some(ComponentRef {
            id: slice(start, e.id_end),
            name: slice(e.id_end as usize, e.name_end),
            group: slice(e.name_end as usize, e.group_end),
            status: e.status,
            plain: e.plain,
        })
    }
}

/// One component of a snapshot, borrowed, packed or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComponentRef<'a> {
    id: &'a str,
    name: &'a str,
    group: &'a str,
    pub status: Severity,
    plain: bool,
}

impl<'a> ComponentRef<'a> {
    pub fn id(&self) -> &'a str {
        self.id
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Name of the group row that lists this component, or "".
    pub fn group(&self) -> &'a str {
        self.group
    }

    /// Whether none of id, name and group needs escaping as a label value.
    pub fn is_plain(&self) -> bool {
        self.plain
    }
}

impl<'a> From<&'a Component> for ComponentRef<'a> {
    fn from(c: &'a Component) -> ComponentRef<'a> {
        ComponentRef {
            id: c.id(),
            name: c.name(),
            group: c.group(),
            status: c.status,
            plain: c.is_plain(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_every_component_as_it_was() {
        let components = vec![
            Component::new("a1", "API", "", Severity::Operational),
            Component::new("", "", "", Severity::Unknown),
            Component::new("b\"2", "Web \\ App", "Europe\n", Severity::MajorOutage),
            Component::new("c3", "Ünïcode ✓", "Asia", Severity::Degraded),
        ];
        let table = ComponentTable::pack(&components);
        assert_eq!(table.len(), components.len());
        for (i, c) in components.iter().enumerate() {
            assert_eq!(table.get(i), Some(ComponentRef::from(c)), "{i}");
        }
        assert_eq!(table.get(components.len()), None);
        assert!(!table.get(2).unwrap().is_plain());
        assert!(table.get(3).unwrap().is_plain());
        assert!(ComponentTable::pack(&[]).is_empty());
    }
}
