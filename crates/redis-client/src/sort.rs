//! SORT with groups (redis-py 2.7.6's `sort(…, groups=True)`): the replies of several GET
//! patterns gathered per element.

use crate::{Error, Redis, Result};
use bytes::Bytes;
use redis_commands::{FromValueError, KeyCommands, SortOptions, ToArgs};

impl Redis {
    /// Sorts like [`sort`](redis_commands::KeyCommands::sort) and gathers the replies
    /// of the GET patterns per element: one group per element, one value per pattern in
    /// the order the patterns were given (`None` where a pattern names a missing key).
    ///
    /// ```no_run
    /// use redis_client::{Redis, SortOptions};
    /// let r = Redis::open("redis://localhost")?;
    /// let rows = r.sort_groups("user_ids", SortOptions::default().get("user:*:name").get("#"))?;
    /// for row in rows {
    ///     println!("{:?} has id {:?}", row[0], row[1]);
    /// }
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] before anything is sent when `options` has fewer than
    /// two GET patterns, as redis-py 2.7.6 raises `DataError`; server errors.
    pub fn sort_groups<K: ToArgs>(
        &self,
        key: K,
        options: SortOptions,
    ) -> Result<Vec<Vec<Option<Bytes>>>> {
        let n = options.get_count();
        if n < 2 {
            return Err(Error::InvalidArgument(format!(
                "sort groups need at least two get patterns, {n} given"
            )));
        }
        let flat = self.sort(key, options)?;
        group(flat, n)
    }
}

/// Cuts the flat reply into groups of `n`.
fn group(flat: Vec<Option<Bytes>>, n: usize) -> Result<Vec<Vec<Option<Bytes>>>> {
    if flat.len() % n != 0 {
        // Only a server that does not answer one value per pattern per element gets here.
        return Err(Error::Reply {
            command: "SORT".to_owned(),
            source: FromValueError::Type {
                expected: "groups of the get patterns' values",
                actual: format!("{} values for {n} patterns", flat.len()),
            },
        });
    }
    let mut it = flat.into_iter();
    let mut groups = Vec::with_capacity(it.len() / n);
    while it.len() > 0 {
        groups.push(it.by_ref().take(n).collect());
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_evenly() {
        let v = |s: &str| Some(Bytes::copy_from_slice(s.as_bytes()));
        let flat = vec![v("a"), v("1"), None, v("2")];
        assert_eq!(
            group(flat.clone(), 2).unwrap(),
            vec![vec![v("a"), v("1")], vec![None, v("2")]]
        );
        assert!(group(flat, 3).is_err());
        assert!(group(Vec::new(), 2).unwrap().is_empty());
    }
}
