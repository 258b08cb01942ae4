//! Symbolic help for cnexp: split a derivative's right-hand side into `a*x + b` with `a` and `b`
//! free of the state `x`, with the same structural rules (and so the same floating-point
//! expressions) as nocmodl's `diffeq.ypp`. A right-hand side that is not linear in its state
//! (a product of two state-dependent terms, a division by one, a function of the state) has no
//! split; nocmodl then falls back to derivimplicit, and so do we.

use crate::ast::Expr;
use crate::ops::Bin;

/// `a` and `b` of `a*x + b`; `None` stands for an exact zero.
pub type Linear = (Option<Expr>, Option<Expr>);

pub fn mentions(e: &Expr, name: &str) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if let Expr::Var(n, _) = x {
            if n == name {
                found = true;
            }
        }
    });
    found
}

fn bin(op: Bin, a: Expr, b: Expr) -> Expr {
    Expr::Bin(op, Box::new(a), Box::new(b))
}

fn neg(a: Expr) -> Expr {
    Expr::Neg(Box::new(a))
}

pub fn linear(e: &Expr, state: &str) -> Option<Linear> {
    Some(match e {
        Expr::Var(n, _) if n == state => (Some(Expr::Num(1.0)), None),
        Expr::Num(_) | Expr::Var(..) | Expr::Str(_) => (None, Some(e.clone())),
        Expr::Neg(x) => {
            let (a, b) = linear(x, state)?;
            (a.map(neg), b.map(neg))
        }
        Expr::Bin(Bin::Add, x, y) | Expr::Bin(Bin::Sub, x, y) => {
            let sub = matches!(e, Expr::Bin(Bin::Sub, ..));
            let (a1, b1) = linear(x, state)?;
            let (a2, b2) = linear(y, state)?;
            let op = if sub { Bin::Sub } else { Bin::Add };
            let combine = |p: Option<Expr>, q: Option<Expr>| match (p, q) {
                (Some(p), Some(q)) => Some(bin(op, p, q)),
                (Some(p), None) => Some(p),
                (None, Some(q)) => Some(if sub { neg(q) } else { q }),
                (None, None) => None,
            };
            (combine(a1, a2), combine(b1, b2))
        }
        Expr::Bin(Bin::Mul, x, y) => {
            let (a1, b1) = linear(x, state)?;
            let (a2, b2) = linear(y, state)?;
            let a = match (a1, a2) {
                (Some(_), Some(_)) => return None,
                (Some(a1), None) => b2.clone().map(|b2| bin(Bin::Mul, a1, b2)),
                (None, Some(a2)) => b1.clone().map(|b1| bin(Bin::Mul, b1, a2)),
                (None, None) => None,
            };
            let b = match (b1, b2) {
                (Some(b1), Some(b2)) => Some(bin(Bin::Mul, b1, b2)),
                _ => None,
            };
            (a, b)
        }
        Expr::Bin(Bin::Div, x, y) => {
            if mentions(y, state) {
                return None;
            }
            let (a1, b1) = linear(x, state)?;
            (a1.map(|a| bin(Bin::Div, a, (**y).clone())), b1.map(|b| bin(Bin::Div, b, (**y).clone())))
        }
        // Powers, comparisons, calls: atoms unless they involve the state.
        _ => {
            if mentions(e, state) {
                return None;
            }
            (None, Some(e.clone()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Source;

    fn parse_expr(s: &str) -> Expr {
        let m = crate::parser::parse(&format!("INITIAL {{ x = {s} }}"), &Source::new("t")).unwrap();
        let crate::ast::Item::Initial(b, _) = &m.items[0] else { panic!() };
        let crate::ast::StmtKind::Assign { value, .. } = &b[0].kind else { panic!() };
        value.clone()
    }

    fn show(l: &Linear) -> (String, String) {
        let f = |x: &Option<Expr>| x.as_ref().map_or("0".into(), |e| e.to_string());
        (f(&l.0), f(&l.1))
    }

    #[test]
    fn gating_equation() {
        let l = linear(&parse_expr("(minf - m)/mtau"), "m").unwrap();
        assert_eq!(show(&l), ("(/ (neg 1) mtau)".into(), "(/ minf mtau)".into()));
    }

    #[test]
    fn products_and_constants() {
        let l = linear(&parse_expr("-A/tau + k*(2 - A)*c"), "A").unwrap();
        assert_eq!(show(&l), ("(+ (/ (neg 1) tau) (* (* k (neg 1)) c))".into(), "(* (* k 2) c)".into()));
        let l = linear(&parse_expr("(irest - ica)/depth"), "cai").unwrap();
        assert_eq!(show(&l).0, "0");
    }

    #[test]
    fn nonlinear_has_no_split() {
        for s in ["m*m", "1/m", "exp(m)", "m^2", "(m > 1)"] {
            assert!(linear(&parse_expr(s), "m").is_none(), "{s}");
        }
    }
}
