//! How an object splits into parts, and whether the parts S3 holds are that split.

use std::collections::{HashMap, HashSet};

use super::{Invalid, PartNumber};

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;
pub const MIN_PART_SIZE: u64 = 5 * MIB;
pub const MAX_PART_SIZE: u64 = 5 * GIB;
pub const MAX_PART_COUNT: u64 = PartNumber::MAX as u64;
/// What S3 can hold as one multipart object: 10,000 parts of 5 GiB.
pub const S3_MAX_OBJECT_BYTES: u64 = MAX_PART_COUNT * MAX_PART_SIZE;

/// How an object of `size` bytes splits into parts: every part is `part_size` but the last,
/// which holds the remainder. Only constructible when S3 would accept the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    size: u64,
    part_size: u64,
}

impl PartPlan {
    /// `requested` is the client's `part_size`; without it, `default` grows (in whole MiB)
    /// until the object fits in 10,000 parts.
    pub fn new(size: u64, requested: Option<u64>, default: u64) -> Result<Self, Invalid> {
        let part_size = match requested {
            Some(p) if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p) => {
                return Err(Invalid::new(
                    "part_size",
                    format!("must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB)"),
                ));
            }
            Some(p) => p,
            None => {
                let needed = size.div_ceil(MAX_PART_COUNT).div_ceil(MIB) * MIB;
                default.max(needed)
            }
        };
        let plan = Self { size, part_size };
        if plan.part_count() > MAX_PART_COUNT {
            return Err(Invalid::new(
                "part_size",
                format!(
                    "{part_size} bytes would need {} parts; S3 allows at most {MAX_PART_COUNT}",
                    plan.part_count()
                ),
            ));
        }
        Ok(plan)
    }

    /// The plan a client followed without declaring it (Uppy's Companion protocol), read off
    /// the parts S3 holds as `(number, size)` in part order: parts 1..=n with no gap, every part
    /// but the last the same size, the last no larger. Anything else says why in `Err`.
    pub fn measured(parts: &[(PartNumber, u64)]) -> Result<Self, String> {
        let Some(&(_, part_size)) = parts.first() else {
            return Err("S3 holds no parts for this upload".into());
        };
        // An empty file is one empty part.
        if let [(n, 0)] = parts {
            return match n.get() {
                1 => Ok(Self {
                    size: 0,
                    part_size: 1,
                }),
                _ => Err("part 1 is missing".into()),
            };
        }
        let mut size = 0u64;
        for (i, &(n, len)) in parts.iter().enumerate() {
            if u64::from(n.get()) != i as u64 + 1 {
                return Err(format!("part {} is missing", i + 1));
            }
            let last = i + 1 == parts.len();
            if len == 0 || len > part_size || (!last && len != part_size) {
                return Err(format!(
                    "part {n} is {len} bytes; every part but the last must be {part_size} bytes and the last no larger"
                ));
            }
            size += len;
        }
        Ok(Self { size, part_size })
    }

    /// Rebuilds a stored plan; refuses what no plan could have been (a zero size or part size).
    pub fn stored(size: u64, part_size: u64) -> Result<Self, Invalid> {
        if part_size == 0 || size.div_ceil(part_size) > MAX_PART_COUNT {
            return Err(Invalid::new(
                "plan",
                format!("{size} bytes in parts of {part_size} is no part plan"),
            ));
        }
        Ok(Self { size, part_size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// At least one: an empty object is one empty part.
    pub fn part_count(&self) -> u64 {
        self.size.div_ceil(self.part_size).max(1)
    }

    pub fn contains(&self, part: PartNumber) -> bool {
        u64::from(part.get()) <= self.part_count()
    }

    /// The exact byte length of `part`, which its pre-signed URL signs as `Content-Length`.
    pub fn part_len(&self, part: PartNumber) -> u64 {
        let start = part.index() * self.part_size;
        self.part_size.min(self.size.saturating_sub(start))
    }

    pub fn parts(&self) -> impl Iterator<Item = PartNumber> + '_ {
        (1..=self.part_count()).filter_map(|n| PartNumber::new(n).ok())
    }
}

/// A part as S3 lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    pub part_number: PartNumber,
    pub size: u64,
    pub etag: String,
    /// Base64 SHA-256, present when the upload was created with part checksums.
    pub checksum_sha256: Option<String>,
}

/// A part the client says it uploaded, with the ETag S3 gave it.
#[derive(Debug, Clone)]
pub struct ClaimedPart {
    pub part_number: PartNumber,
    pub etag: String,
}

/// Why the parts S3 holds cannot complete the upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    #[error(
        "{missing_count} of {part_count} parts are not uploaded yet (first missing: {first_missing:?})"
    )]
    Incomplete {
        part_count: u64,
        missing_count: usize,
        /// The first 20 missing part numbers.
        first_missing: Vec<u16>,
    },
    #[error("part {part} is {size} bytes; it must be {expected}")]
    PartSize { part: u16, size: u64, expected: u64 },
    /// The parts listed at completion are not the ones S3 holds.
    #[error(transparent)]
    Claimed(Invalid),
    /// A session that declared no size holds parts that follow no plan.
    #[error("cannot complete: {0}")]
    Unmeasurable(String),
}

/// The plan of a session that declared no size, from the parts S3 holds.
pub fn measure(listed: &[ListedPart]) -> Result<PartPlan, PartsError> {
    let sizes: Vec<(PartNumber, u64)> = listed.iter().map(|p| (p.part_number, p.size)).collect();
    PartPlan::measured(&sizes).map_err(PartsError::Unmeasurable)
}

/// The parts to complete with, in order, after checking that S3 holds every planned part at its
/// exact size, and that any parts the client listed are exactly those. Part checksums travel
/// with the parts as S3 lists them: S3 checked each body against its signed checksum at PUT.
pub fn check_parts(
    plan: &PartPlan,
    listed: &[ListedPart],
    claimed: Option<&[ClaimedPart]>,
) -> Result<Vec<ListedPart>, PartsError> {
    let by_number: HashMap<PartNumber, &ListedPart> =
        listed.iter().map(|p| (p.part_number, p)).collect();
    let mut parts = Vec::with_capacity(by_number.len());
    let mut missing = Vec::new();
    for n in plan.parts() {
        match by_number.get(&n) {
            Some(&p) => parts.push(p),
            None => missing.push(n.get()),
        }
    }
    if !missing.is_empty() {
        return Err(PartsError::Incomplete {
            part_count: plan.part_count(),
            missing_count: missing.len(),
            first_missing: missing.into_iter().take(20).collect(),
        });
    }
    if let Some(p) = parts
        .iter()
        .find(|p| p.size != plan.part_len(p.part_number))
    {
        return Err(PartsError::PartSize {
            part: p.part_number.get(),
            size: p.size,
            expected: plan.part_len(p.part_number),
        });
    }
    if let Some(claimed) = claimed {
        check_claimed(plan, &by_number, claimed)?;
    }
    Ok(parts.into_iter().cloned().collect())
}

fn check_claimed(
    plan: &PartPlan,
    held: &HashMap<PartNumber, &ListedPart>,
    claimed: &[ClaimedPart],
) -> Result<(), PartsError> {
    let refuse = |why: String| PartsError::Claimed(Invalid::new("parts", why));
    let mut seen = HashSet::new();
    for c in claimed {
        let n = c.part_number;
        if !seen.insert(n) {
            return Err(refuse(format!("part {n} is listed twice")));
        }
        let Some(part) = held.get(&n).filter(|_| plan.contains(n)) else {
            return Err(refuse(format!(
                "part {n} is outside 1..={}",
                plan.part_count()
            )));
        };
        if c.etag.trim_matches('"') != part.etag {
            return Err(refuse(format!(
                "the etag of part {n} is not the one S3 holds"
            )));
        }
    }
    if seen.len() as u64 != plan.part_count() {
        return Err(refuse(format!(
            "must list every part 1..={} ({} listed)",
            plan.part_count(),
            seen.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u64) -> PartNumber {
        PartNumber::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn last_part_holds_the_remainder() {
        let plan =
            PartPlan::new(12 * MIB + 7, Some(5 * MIB), 16 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.part_count(), 3);
        assert_eq!(plan.part_len(p(1)), 5 * MIB);
        assert_eq!(plan.part_len(p(3)), 2 * MIB + 7);
        assert!(plan.contains(p(3)) && !plan.contains(p(4)));
        assert_eq!(
            plan.parts().map(|n| plan.part_len(n)).sum::<u64>(),
            plan.size()
        );
    }

    #[test]
    fn default_part_size_grows_to_fit_ten_thousand_parts() {
        let plan = PartPlan::new(5 * 1024 * GIB, None, 16 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.part_count() <= MAX_PART_COUNT);
        assert_eq!(plan.part_size() % MIB, 0);
        let small = PartPlan::new(100, None, 16 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((small.part_count(), small.part_len(p(1))), (1, 100));
        let max =
            PartPlan::new(S3_MAX_OBJECT_BYTES, None, 16 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(max.part_count(), MAX_PART_COUNT);
    }

    #[test]
    fn measures_a_plan_from_the_parts_s3_holds() {
        let plan = PartPlan::measured(&[(p(1), 5 * MIB), (p(2), 5 * MIB), (p(3), 7)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.size(), plan.part_count()), (10 * MIB + 7, 3));
        assert_eq!(plan.part_len(p(3)), 7);
        let one = PartPlan::measured(&[(p(1), 9)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((one.size(), one.part_count()), (9, 1));
        for bad in [
            vec![],
            vec![(p(2), 5 * MIB)],
            vec![(p(1), 5 * MIB), (p(3), 1)],
            vec![(p(1), 5 * MIB), (p(2), 6 * MIB)],
            vec![(p(1), 5 * MIB), (p(2), 4 * MIB), (p(3), 1)],
        ] {
            assert!(PartPlan::measured(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_object_is_one_empty_part() {
        let plan = PartPlan::new(0, None, 16 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.part_count(), plan.part_len(p(1))), (1, 0));
        assert_eq!(plan.parts().collect::<Vec<_>>(), [p(1)]);
        let measured = PartPlan::measured(&[(p(1), 0)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((measured.size(), measured.part_count()), (0, 1));
        assert_eq!(
            PartPlan::stored(measured.size(), measured.part_size()),
            Ok(measured)
        );
        assert!(PartPlan::measured(&[(p(2), 0)]).is_err());
        assert!(PartPlan::measured(&[(p(1), 5 * MIB), (p(2), 0)]).is_err());
    }

    #[test]
    fn refuses_what_s3_would_refuse() {
        assert!(PartPlan::new(100, Some(MIB), 16 * MIB).is_err());
        assert!(PartPlan::new(100, Some(6 * GIB), 16 * MIB).is_err());
        let err = PartPlan::new(10_001 * 5 * MIB, Some(5 * MIB), 16 * MIB);
        assert_eq!(err.map_err(|e| e.field), Err("part_size".to_owned()));
    }

    fn listed(sizes: &[u64]) -> Vec<ListedPart> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ListedPart {
                part_number: p(i as u64 + 1),
                size,
                etag: format!("etag-{}", i + 1),
                checksum_sha256: None,
            })
            .collect()
    }

    fn claim(n: u64, etag: &str) -> ClaimedPart {
        ClaimedPart {
            part_number: p(n),
            etag: etag.to_owned(),
        }
    }

    fn plan(size: u64) -> PartPlan {
        PartPlan::new(size, Some(5 * MIB), 16 * MIB).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn check_parts_takes_every_planned_part_in_order() {
        let parts = check_parts(&plan(10 * MIB + 3), &listed(&[5 * MIB, 5 * MIB, 3]), None);
        let numbers: Vec<u16> = parts
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|p| p.part_number.get())
            .collect();
        assert_eq!(numbers, [1, 2, 3]);
    }

    #[test]
    fn check_parts_names_missing_and_wrongly_sized_parts() {
        let mut held = listed(&[5 * MIB, 5 * MIB, 3]);
        held.remove(1);
        assert_eq!(
            check_parts(&plan(10 * MIB + 3), &held, None),
            Err(PartsError::Incomplete {
                part_count: 3,
                missing_count: 1,
                first_missing: vec![2],
            })
        );
        assert_eq!(
            check_parts(&plan(10 * MIB + 3), &listed(&[5 * MIB, 5 * MIB, 4]), None),
            Err(PartsError::PartSize {
                part: 3,
                size: 4,
                expected: 3,
            })
        );
    }

    #[test]
    fn claimed_parts_must_be_exactly_the_held_ones() {
        let plan = plan(5 * MIB + 1);
        let held = listed(&[5 * MIB, 1]);
        let ok = [claim(1, "\"etag-1\""), claim(2, "etag-2")];
        assert!(check_parts(&plan, &held, Some(&ok)).is_ok());
        for bad in [
            vec![claim(1, "etag-1")],
            vec![claim(1, "etag-1"), claim(1, "etag-1")],
            vec![claim(1, "etag-1"), claim(2, "other")],
            vec![claim(1, "etag-1"), claim(2, "etag-2"), claim(3, "etag-3")],
        ] {
            let err = check_parts(&plan, &held, Some(&bad));
            assert!(
                matches!(&err, Err(PartsError::Claimed(i)) if i.field == "parts"),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn measure_explains_parts_that_follow_no_plan() {
        assert_eq!(
            measure(&listed(&[5 * MIB, 7])).map(|p| p.size()),
            Ok(5 * MIB + 7)
        );
        assert!(matches!(
            measure(&listed(&[5 * MIB, 6 * MIB])),
            Err(PartsError::Unmeasurable(_))
        ));
    }

    #[test]
    fn stored_plans_cannot_divide_by_zero() {
        assert!(PartPlan::stored(0, 0).is_err());
        assert!(PartPlan::stored(10, 0).is_err());
        assert_eq!(PartPlan::stored(0, 5 * MIB).map(|p| p.part_count()), Ok(1));
        assert_eq!(PartPlan::stored(7, 5 * MIB).map(|p| p.part_count()), Ok(1));
    }
}
