//! Calculator (`CalculatorComponent`): evaluates an arithmetic expression as
//! Langflow's `evaluate_expression` does. Python's grammar is parsed
//! (numbers, `+ - * / // % ** @`, unary signs, parentheses), but only
//! numbers and the binary operators `+ - * / **` evaluate; anything else
//! answers Langflow's error text. The result is formatted `{:.6f}` with
//! trailing zeros stripped, in a Data `{"result": …}`; failures answer
//! `{"error": …, "input": …}`.

use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, data, output, port, text_or};
use serde_json::json;

/// Type name in the library.
pub const NAME: &str = "calculator";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Calculator".into(),
        description: "Perform basic arithmetic operations on a given expression.".into(),
        inputs: vec![port("expression", &["Message"], false)],
        outputs: vec![port("result", &["Data"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let expression = text_or(inv, "expression", "");
    let object = match evaluate(&expression) {
        Ok(result) => json!({ "result": format_result(result) }),
        Err(error) => json!({ "error": error, "input": expression }),
    };
    Ok(vec![output("result", data(&object, "text"))])
}

/// The expression's value, or Langflow's error text.
pub fn evaluate(expression: &str) -> Result<f64, String> {
    if expression.trim().is_empty() {
        return Err("Invalid expression: invalid syntax (<unknown>, line 0)".into());
    }
    brackets_balance(expression)?;
    let tokens = tokenize(expression).ok_or_else(syntax_error)?;
    let mut parser = Parser { tokens, at: 0 };
    let tree = parser.expr().ok_or_else(syntax_error)?;
    if parser.at != parser.tokens.len() {
        return Err(syntax_error());
    }
    tree.eval()
}

/// `f"{result:.6f}".rstrip("0").rstrip(".")`.
pub fn format_result(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".into()
        } else if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let fixed = format!("{value:.6}");
    fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Python reports unbalanced brackets before anything else.
fn brackets_balance(expression: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for c in expression.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Err("Invalid expression: unmatched ')' (<unknown>, line 1)".into()),
            ')' => depth -= 1,
            _ => {}
        }
    }
    if depth > 0 {
        return Err("Invalid expression: '(' was never closed (<unknown>, line 1)".into());
    }
    Ok(())
}

fn syntax_error() -> String {
    "Invalid expression: invalid syntax (<unknown>, line 1)".into()
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Op(&'static str),
    Open,
    Close,
    Other,
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                // An exponent sign belongs to the number: 1e-3.
                if matches!(chars[i], 'e' | 'E') && matches!(chars.get(i + 1), Some('+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
            let literal: String = chars[start..i].iter().filter(|&&c| c != '_').collect();
            tokens.push(Token::Number(literal.parse().ok()?));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = match two.as_str() {
            "**" => Some("**"),
            "//" => Some("//"),
            _ => None,
        };
        if let Some(op) = op {
            tokens.push(Token::Op(op));
            i += 2;
            continue;
        }
        tokens.push(match c {
            '+' => Token::Op("+"),
            '-' => Token::Op("-"),
            '*' => Token::Op("*"),
            '/' => Token::Op("/"),
            '%' => Token::Op("%"),
            '@' => Token::Op("@"),
            '~' => Token::Op("~"),
            '(' => Token::Open,
            ')' => Token::Close,
            c if c.is_alphabetic() || c == '_' => {
                while i + 1 < chars.len() && (chars[i + 1].is_alphanumeric() || chars[i + 1] == '_') {
                    i += 1;
                }
                Token::Other
            }
            _ => return None,
        });
        i += 1;
    }
    Some(tokens)
}

/// Python's expression tree, as far as arithmetic goes.
#[derive(Debug)]
enum Expr {
    Constant(f64),
    Name,
    Unary,
    Binary(&'static str, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Langflow's `_eval_expr`: the operator is checked before its operands.
    fn eval(&self) -> Result<f64, String> {
        match self {
            Expr::Constant(v) => Ok(*v),
            Expr::Name => Err("Invalid expression: Unsupported operation or expression type: Name".into()),
            Expr::Unary => Err("Invalid expression: Unsupported operation or expression type: UnaryOp".into()),
            Expr::Binary(op, left, right) => {
                let name = match *op {
                    "+" | "-" | "*" | "/" | "**" => None,
                    "//" => Some("FloorDiv"),
                    "%" => Some("Mod"),
                    _ => Some("MatMult"),
                };
                if let Some(name) = name {
                    return Err(format!("Invalid expression: Unsupported binary operator: {name}"));
                }
                let (l, r) = (left.eval()?, right.eval()?);
                match *op {
                    "+" => Ok(l + r),
                    "-" => Ok(l - r),
                    "*" => Ok(l * r),
                    "/" if r == 0.0 => Err("Error: Division by zero".into()),
                    "/" => Ok(l / r),
                    _ if l == 0.0 && r < 0.0 => Err("Error: Division by zero".into()),
                    _ => {
                        let v = l.powf(r);
                        if v.is_infinite() {
                            Err("Invalid expression: (34, 'Numerical result out of range')".into())
                        } else {
                            Ok(v)
                        }
                    }
                }
            }
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some(Token::Op(op)) => Some(op),
            _ => None,
        }
    }

    fn expr(&mut self) -> Option<Expr> {
        let mut left = self.term()?;
        while let Some(op @ ("+" | "-")) = self.peek_op() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
        Some(left)
    }

    fn term(&mut self) -> Option<Expr> {
        let mut left = self.factor()?;
        while let Some(op @ ("*" | "/" | "//" | "%" | "@")) = self.peek_op() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.factor()?));
        }
        Some(left)
    }

    fn factor(&mut self) -> Option<Expr> {
        if let Some("+" | "-" | "~") = self.peek_op() {
            self.at += 1;
            self.factor()?;
            return Some(Expr::Unary);
        }
        self.power()
    }

    fn power(&mut self) -> Option<Expr> {
        let base = self.atom()?;
        if self.peek_op() == Some("**") {
            self.at += 1;
            return Some(Expr::Binary("**", Box::new(base), Box::new(self.factor()?)));
        }
        Some(base)
    }

    fn atom(&mut self) -> Option<Expr> {
        let token = self.tokens.get(self.at)?.clone();
        self.at += 1;
        match token {
            Token::Number(v) => Some(Expr::Constant(v)),
            Token::Other => Some(Expr::Name),
            Token::Open => {
                let inner = self.expr()?;
                (self.tokens.get(self.at) == Some(&Token::Close)).then(|| self.at += 1)?;
                Some(inner)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(expression: &str) -> String {
        match evaluate(expression) {
            Ok(v) => format_result(v),
            Err(e) => e,
        }
    }

    #[test]
    fn evaluates_like_langflow() {
        assert_eq!(calc("4*4*(33/22)+12-20"), "16");
        assert_eq!(calc("2 ** 3 ** 2"), "512");
        assert_eq!(calc("1/3"), "0.333333");
        assert_eq!(calc("10 / 4"), "2.5");
        assert_eq!(calc("1e3 + 0.5"), "1000.5");
        assert_eq!(calc("0.0000001"), "0");
    }

    #[test]
    fn refuses_what_langflow_refuses() {
        assert_eq!(calc("1/0"), "Error: Division by zero");
        assert_eq!(calc("-3 + 1"), "Invalid expression: Unsupported operation or expression type: UnaryOp");
        assert_eq!(calc("7 % 2"), "Invalid expression: Unsupported binary operator: Mod");
        assert_eq!(calc("x + 1"), "Invalid expression: Unsupported operation or expression type: Name");
        assert_eq!(calc("2 +"), "Invalid expression: invalid syntax (<unknown>, line 1)");
        assert_eq!(calc("(1"), "Invalid expression: '(' was never closed (<unknown>, line 1)");
    }
}
