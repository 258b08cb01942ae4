//! Network geometry: how many cells of each population sit in which layer, the layer boxes in (u, v, l)
//! coordinates, optional depth constraints, the volume's rotation and origin, and axon extents.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `{population: {layer: count}}` (`cell_distributions.yml`, `Geometry.Cell Distribution`).
pub type CellDistributions = BTreeMap<String, BTreeMap<String, u32>>;

/// `{layer: [[u_min, v_min, l_min], [u_max, v_max, l_max]]}` in µm (`layer_extents.yml`).
pub type LayerExtents = BTreeMap<String, LayerExtent>;

/// `{population: {layer: [l_min, l_max]}}`: somata of that population in that layer only at these depths.
pub type CellConstraints = BTreeMap<String, BTreeMap<String, [f64; 2]>>;

/// `{presynaptic population: {layer name | "default": {width: [u, v], offset: [u, v]}}}` (`axon_extents.yml`).
pub type AxonExtents = BTreeMap<String, BTreeMap<String, AxonExtent>>;

/// Rotation of the volume in degrees about x, y, z (MiV applies only the last non-zero angle).
pub type Rotation = [f64; 3];

/// One layer box: `[[u_min, v_min, l_min], [u_max, v_max, l_max]]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayerExtent(pub [[f64; 3]; 2]);

impl LayerExtent {
    pub fn min(&self) -> [f64; 3] {
        self.0[0]
    }
    pub fn max(&self) -> [f64; 3] {
        self.0[1]
    }
    pub fn contains(&self, p: [f64; 3], tolerance: f64) -> bool {
        (0..3).all(|i| p[i] >= self.0[0][i] - tolerance && p[i] <= self.0[1][i] + tolerance)
    }
}

/// The bounding box of all layers, as MiV's `get_total_extents`.
pub fn total_extent(extents: &LayerExtents) -> LayerExtent {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for e in extents.values() {
        for i in 0..3 {
            lo[i] = lo[i].min(e.0[0][i]);
            hi[i] = hi[i].max(e.0[1][i]);
        }
    }
    LayerExtent([lo, hi])
}

/// Check every box has min ≤ max and finite corners.
pub fn validate_layer_extents(extents: &LayerExtents, file: &Path, key: &str) -> Result<(), ConfigError> {
    for (layer, e) in extents {
        for i in 0..3 {
            let (a, b) = (e.0[0][i], e.0[1][i]);
            if !a.is_finite() || !b.is_finite() || a > b {
                return Err(ConfigError::new(
                    file,
                    join(key, layer),
                    format!("expected [[u_min, v_min, l_min], [u_max, v_max, l_max]] with min <= max, got {:?}", e.0),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// An axon's reach around its soma, in arc distance along U and V (µm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxonExtent {
    pub width: [f64; 2],
    #[serde(default)]
    pub offset: [f64; 2],
}

/// The arc-distance origin: per axis a statistic of the sampled volume (`median`, `mean`, `min`, `max`) or a
/// coordinate. Default `{U: median, V: median, L: max}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    #[serde(rename = "U")]
    pub u: OriginValue,
    #[serde(rename = "V")]
    pub v: OriginValue,
    #[serde(rename = "L")]
    pub l: OriginValue,
}

impl Default for Origin {
    fn default() -> Self {
        Origin { u: OriginValue::Median, v: OriginValue::Median, l: OriginValue::Max }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OriginValue {
    Coordinate(f64),
    Median,
    Mean,
    Min,
    Max,
}

impl Serialize for OriginValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OriginValue::Coordinate(c) => s.serialize_f64(*c),
            OriginValue::Median => s.serialize_str("median"),
            OriginValue::Mean => s.serialize_str("mean"),
            OriginValue::Min => s.serialize_str("min"),
            OriginValue::Max => s.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for OriginValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(c) => Ok(OriginValue::Coordinate(c)),
            Raw::Name(n) => match n.as_str() {
                "median" => Ok(OriginValue::Median),
                "mean" => Ok(OriginValue::Mean),
                "min" => Ok(OriginValue::Min),
                "max" => Ok(OriginValue::Max),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number or one of median, mean, min, max; got `{other}`"
                ))),
            },
        }
    }
}

impl OriginValue {
    /// The value over evenly spaced samples `lo..=hi` (MiV evaluates the numpy function on a 10-point
    /// resample; for evenly spaced samples median and mean are the midpoint).
    pub fn evaluate(self, lo: f64, hi: f64) -> f64 {
        match self {
            OriginValue::Coordinate(c) => c,
            OriginValue::Median | OriginValue::Mean => 0.5 * (lo + hi),
            OriginValue::Min => lo,
            OriginValue::Max => hi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_yaml_str;

    #[test]
    fn layer_extents_parse_and_total() {
        let y = "SO: [[0.0,0.0,0.0],[200.0,200.0,5.0]]\nSP: [[0,0,5],[200,200,50]]\n";
        let e: LayerExtents = from_yaml_str(y, Path::new("layer_extents.yml")).unwrap();
        assert_eq!(e["SP"].max(), [200.0, 200.0, 50.0]);
        assert_eq!(total_extent(&e).0, [[0.0, 0.0, 0.0], [200.0, 200.0, 50.0]]);
        let bad: LayerExtents = from_yaml_str("SO: [[0,0,9],[1,1,5]]", Path::new("x.yml")).unwrap();
        let err = validate_layer_extents(&bad, Path::new("x.yml"), "layer_extents").unwrap_err();
        assert_eq!(err.key, "layer_extents.SO");
    }

    #[test]
    fn origin_accepts_names_and_numbers() {
        let o: Origin = from_yaml_str("{U: median, V: 12.5, L: max}", Path::new("o.yml")).unwrap();
        assert_eq!(o.u, OriginValue::Median);
        assert_eq!(o.v, OriginValue::Coordinate(12.5));
        assert_eq!(o.l.evaluate(0.0, 10.0), 10.0);
        let e = from_yaml_str::<Origin>("{U: average, V: 1, L: 2}", Path::new("o.yml")).unwrap_err();
        assert!(e.to_string().contains("o.yml"), "{e}");
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"{"U":"median","V":12.5,"L":"max"}"#);
    }

    #[test]
    fn axon_extent_offset_defaults_to_zero_and_unknown_keys_fail() {
        let a: AxonExtents = from_yaml_str("PYR: {default: {width: [200, 100]}}", Path::new("a.yml")).unwrap();
        assert_eq!(a["PYR"]["default"].offset, [0.0, 0.0]);
        let e =
            from_yaml_str::<AxonExtents>("PYR: {default: {width: [1,1], wdth: 2}}", Path::new("a.yml")).unwrap_err();
        assert_eq!(e.key, "PYR.default.wdth");
        assert!(e.message.contains("wdth"), "{e}");
    }
}
