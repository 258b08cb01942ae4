//! An `exp` that LLVM can vectorise. The mechanism kernels spend most of their time in exp; the libm call
//! blocks vectorisation, this branch-free version (Cody-Waite reduction, degree-13 Taylor polynomial, 2^k built
//! from integer bits) does not. It is within 2 ulp of the correctly rounded result for |x| <= 708 and uses only
//! IEEE add/mul and integer ops, so a lane of a vector loop gives the same bits as the scalar loop: results do
//! not depend on which CPU path runs them. Arguments are clamped to [-708, 709]; exp(-800) gives about 3e-308
//! instead of 0, which no kernel here can tell apart.

/// Define a kernel function compiled three times (generic, AVX2, AVX-512F) and chosen at run time by CPU
/// features, plus `$generic`, the generic version alone (for tests). Only IEEE add/mul/div and exact integer
/// operations are used by the kernels and Rust never fuses a*b+c, so every version gives the same bits.
#[macro_export]
#[doc(hidden)]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident / $generic:ident ($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn v512($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn v256($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { v512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { v256($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
        #[inline(always)]
        #[allow(dead_code)]
        $vis fn $generic($($arg: $ty),*) $body
    };
}

// The constants are public for code generators that must reproduce `exp` step for step (the
// NMODL compiler's native kernels).
pub const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split as in fdlibm: the high part has trailing zero bits so that k * LN2_HI is exact.
pub const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
pub const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
pub const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// 1/n! for n = 0..=13.
pub const INV_FACT: [f64; 14] = [
    1.0,
    1.0,
    0.5,
    1.666_666_666_666_666_6e-1,
    4.166_666_666_666_666_4e-2,
    8.333_333_333_333_333e-3,
    1.388_888_888_888_889e-3,
    1.984_126_984_126_984e-4,
    2.480_158_730_158_73e-5,
    2.755_731_922_398_589_3e-6,
    2.755_731_922_398_589e-7,
    2.505_210_838_544_172e-8,
    2.087_675_698_786_81e-9,
    1.605_904_383_682_161_3e-10,
];

/// e^x (see the module comment for accuracy and range).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let x = if x < -708.0 { -708.0 } else { x };
    let x = if x > 709.0 { 709.0 } else { x };
    let kf = x * LOG2E + SHIFTER;
    let kbits = kf.to_bits();
    let k = kf - SHIFTER;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = INV_FACT[13];
    for &c in INV_FACT[..13].iter().rev() {
        p = p * r + c;
    }
    let scale = f64::from_bits(kbits.wrapping_sub(SHIFTER.to_bits()).wrapping_add(1023) << 52);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst: f64 = 0.0;
        let mut x = -700.0;
        while x < 700.0 {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.012_345_6;
        }
        for &x in &[0.0, 1e-300, -1e-300, 1e-10, -1e-10, 0.5, -0.5, 0.346_573_590_279_972_65, -0.346_573_590_279_972_65]
        {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst <= 2.0 * f64::EPSILON, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f64::NAN).is_nan());
        assert!(exp(-1e6) < 1e-300 && exp(-1e6) >= 0.0);
    }
}
