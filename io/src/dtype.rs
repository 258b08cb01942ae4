//! Element types of NeuroH5 attribute values and a typed column of them.
//!
//! NeuroH5 stores attribute values as 1-D numeric datasets of one of a few integer or float types. [`Dtype`]
//! names the type, [`Element`] ties it to a Rust type, and [`Values`] is a column whose type is only known at
//! run time (what a reader returns for a namespace it has not seen before).

use serde::Serialize;

/// The numeric types an attribute dataset may have. The first seven are what neuroh5's Python writer supports;
/// the 64-bit ones are for miv's own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Dtype {
    pub const ALL: [Dtype; 10] = [
        Dtype::U8,
        Dtype::I8,
        Dtype::U16,
        Dtype::I16,
        Dtype::U32,
        Dtype::I32,
        Dtype::U64,
        Dtype::I64,
        Dtype::F32,
        Dtype::F64,
    ];

    pub fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64)
    }

    pub fn is_signed(self) -> bool {
        matches!(self, Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 | Dtype::F32 | Dtype::F64)
    }

    /// numpy's name for the type ("float32", "uint8", ...), used in listings and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::I8 => "int8",
            Dtype::U16 => "uint16",
            Dtype::I16 => "int16",
            Dtype::U32 => "uint32",
            Dtype::I32 => "int32",
            Dtype::U64 => "uint64",
            Dtype::I64 => "int64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The type of an integer or float of `size` bytes.
    pub fn from_parts(float: bool, signed: bool, size: usize) -> Option<Dtype> {
        Some(match (float, signed, size) {
            (true, _, 4) => Dtype::F32,
            (true, _, 8) => Dtype::F64,
            (false, false, 1) => Dtype::U8,
            (false, true, 1) => Dtype::I8,
            (false, false, 2) => Dtype::U16,
            (false, true, 2) => Dtype::I16,
            (false, false, 4) => Dtype::U32,
            (false, true, 4) => Dtype::I32,
            (false, false, 8) => Dtype::U64,
            (false, true, 8) => Dtype::I64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be stored as NeuroH5 attribute values.
pub trait Element: bytemuck::Pod + PartialEq + PartialOrd + std::fmt::Debug + Send + Sync + 'static {
    const DTYPE: Dtype;
    fn into_values(v: Vec<Self>) -> Values;
    fn slice_of(v: &Values) -> Option<&[Self]>;
    fn vec_of(v: &mut Values) -> Option<&mut Vec<Self>>;
    fn take_vec(v: Values) -> Result<Vec<Self>, Values>;
    fn to_f64(self) -> f64;
}

macro_rules! elements {
    ($($t:ty => $variant:ident),* $(,)?) => {
        /// A column of attribute values of one [`Dtype`].
        #[derive(Debug, Clone, PartialEq)]
        pub enum Values {
            $($variant(Vec<$t>),)*
        }

        $(impl Element for $t {
            const DTYPE: Dtype = Dtype::$variant;
            fn into_values(v: Vec<Self>) -> Values {
                Values::$variant(v)
            }
            fn slice_of(v: &Values) -> Option<&[Self]> {
                match v {
                    Values::$variant(x) => Some(x),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
            fn vec_of(v: &mut Values) -> Option<&mut Vec<Self>> {
                match v {
                    Values::$variant(x) => Some(x),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
            fn take_vec(v: Values) -> Result<Vec<Self>, Values> {
                match v {
                    Values::$variant(x) => Ok(x),
                    #[allow(unreachable_patterns)]
                    other => Err(other),
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
        })*

        impl Values {
            /// An empty column of type `dtype`.
            pub fn empty(dtype: Dtype) -> Values {
                match dtype {
                    $(Dtype::$variant => Values::$variant(Vec::new()),)*
                }
            }

            /// A column of `n` zeros of type `dtype`.
            pub fn zeros(dtype: Dtype, n: usize) -> Values {
                match dtype {
                    $(Dtype::$variant => Values::$variant(vec![<$t>::default(); n]),)*
                }
            }

            pub fn dtype(&self) -> Dtype {
                match self {
                    $(Values::$variant(_) => Dtype::$variant,)*
                }
            }

            pub fn len(&self) -> usize {
                match self {
                    $(Values::$variant(v) => v.len(),)*
                }
            }

            /// The raw little-endian bytes of the column.
            pub fn as_bytes(&self) -> &[u8] {
                match self {
                    $(Values::$variant(v) => bytemuck::cast_slice(v),)*
                }
            }

            /// Mutable raw bytes (for reading into).
            pub fn as_bytes_mut(&mut self) -> &mut [u8] {
                match self {
                    $(Values::$variant(v) => bytemuck::cast_slice_mut(v),)*
                }
            }

            /// A column of type `dtype` from raw bytes (whose length must be a multiple of the element size).
            pub fn from_bytes(dtype: Dtype, bytes: &[u8]) -> Values {
                let mut v = Values::zeros(dtype, bytes.len() / dtype.size());
                let n = v.as_bytes().len();
                v.as_bytes_mut().copy_from_slice(&bytes[..n]);
                v
            }

            /// Reserve room for `n` more elements.
            pub fn reserve(&mut self, n: usize) {
                match self {
                    $(Values::$variant(v) => v.reserve(n),)*
                }
            }

            /// Append `other[range]` (same type) to this column.
            pub fn extend_from(&mut self, other: &Values, range: std::ops::Range<usize>) {
                match (self, other) {
                    $((Values::$variant(a), Values::$variant(b)) => a.extend_from_slice(&b[range]),)*
                    (a, b) => panic!("extend_from: {} column extended with {} values", a.dtype(), b.dtype()),
                }
            }

            /// The elements of `range` as a new column.
            pub fn slice(&self, range: std::ops::Range<usize>) -> Values {
                match self {
                    $(Values::$variant(v) => Values::$variant(v[range].to_vec()),)*
                }
            }

            /// The column reordered: element i of the result is `self[order[i]]`.
            pub fn permuted(&self, order: &[usize]) -> Values {
                match self {
                    $(Values::$variant(v) => Values::$variant(order.iter().map(|&i| v[i]).collect()),)*
                }
            }

            /// Reorder `self[start..start + order.len()]` so that its element k is the old element
            /// `start + order[k]`.
            pub fn permute_range(&mut self, start: usize, order: &[usize]) {
                match self {
                    $(Values::$variant(v) => {
                        let part = &mut v[start..start + order.len()];
                        let tmp: Vec<$t> = order.iter().map(|&i| part[i]).collect();
                        part.copy_from_slice(&tmp);
                    })*
                }
            }

            /// The elements of `range` as JSON numbers (integers stay integers).
            pub fn json_range(&self, range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
                match self {
                    $(Values::$variant(v) => v[range].iter().map(|x| serde_json::json!(x)).collect(),)*
                }
            }
        }
    };
}

elements!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, u64 => U64, i64 => I64, f32 => F32, f64 => F64);

impl Values {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `&[T]`, or `None` if the column has another type.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::slice_of(self)
    }

    pub fn as_vec_mut<T: Element>(&mut self) -> Option<&mut Vec<T>> {
        T::vec_of(self)
    }

    /// The elements as `Vec<T>` without copying, or the column back if it has another type.
    pub fn into_vec<T: Element>(self) -> Result<Vec<T>, Values> {
        T::take_vec(self)
    }
}

impl<T: Element> From<Vec<T>> for Values {
    fn from(v: Vec<T>) -> Values {
        T::into_values(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_roundtrip_every_dtype() {
        for d in Dtype::ALL {
            let mut v = Values::zeros(d, 5);
            for (i, b) in v.as_bytes_mut().iter_mut().enumerate() {
                *b = (i * 37 % 251) as u8;
            }
            let w = Values::from_bytes(d, v.as_bytes());
            assert_eq!(v, w);
            assert_eq!(w.dtype(), d);
            assert_eq!(w.len(), 5);
            assert_eq!(Dtype::from_name(d.name()), Some(d));
            assert_eq!(Dtype::from_parts(d.is_float(), d.is_signed(), d.size()), Some(d));
        }
    }

    #[test]
    fn permute_and_slice() {
        let v: Values = vec![10i16, 20, 30, 40].into();
        assert_eq!(v.permuted(&[3, 0, 2]), Values::I16(vec![40, 10, 30]));
        assert_eq!(v.slice(1..3), Values::I16(vec![20, 30]));
        let mut w = Values::empty(Dtype::I16);
        w.extend_from(&v, 2..4);
        assert_eq!(w.as_slice::<i16>().unwrap(), &[30, 40]);
        assert!(w.as_slice::<u16>().is_none());
    }
}
