//! How an object splits into parts.

use std::fmt;

use serde::Serialize;

use crate::Invalid;

/// An S3 part number, 1..=10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(minimum = 1, maximum = 10_000)
)]
#[serde(transparent)]
pub struct PartNumber(u16);

impl PartNumber {
    pub const MAX: u16 = 10_000;

    pub fn new(n: u64) -> Result<Self, Invalid> {
        match u16::try_from(n) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(Invalid::new(
                "part_number",
                format!("{n} is outside 1..={}", Self::MAX),
            )),
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let n: u64 = s
            .parse()
            .map_err(|_| Invalid::new("part_number", format!("{s:?} is not a number")))?;
        Self::new(n)
    }

    pub fn get(self) -> u16 {
        self.0
    }

    pub fn index(self) -> u64 {
        u64::from(self.0 - 1)
    }
}

impl fmt::Display for PartNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_are_bounded() {
        assert!(PartNumber::new(0).is_err());
        assert_eq!(PartNumber::new(1).map(PartNumber::get), Ok(1));
        assert_eq!(PartNumber::new(10_000).map(PartNumber::get), Ok(10_000));
        assert!(PartNumber::new(10_001).is_err());
        assert!(PartNumber::new(u64::from(u16::MAX) + 2).is_err());
        assert!(PartNumber::parse("x").is_err());
    }

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

    #[test]
    fn stored_plans_cannot_divide_by_zero() {
        assert!(PartPlan::stored(0, 0).is_err());
        assert!(PartPlan::stored(10, 0).is_err());
        assert_eq!(PartPlan::stored(0, 5 * MIB).map(|p| p.part_count()), Ok(1));
        assert_eq!(PartPlan::stored(7, 5 * MIB).map(|p| p.part_count()), Ok(1));
    }
}
