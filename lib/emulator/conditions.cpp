// Design: a tokenizer and a recursive-descent parser build a flat node vector (children
// before parents, the root last); evaluation walks it with short-circuit and/or. Nesting is
// capped so a query string of parentheses cannot exhaust the stack.
#include "emulator/conditions.hpp"

#include "core/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace cwhook::emulator {

namespace {

constexpr int max_nesting = 64;

char lower(char c)
{
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string lowered(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

int icompare(std::string_view a, std::string_view b)
{
    const auto n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        const auto x = static_cast<unsigned char>(lower(a[i]));
        const auto y = static_cast<unsigned char>(lower(b[i]));
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

bool icontains(std::string_view text, std::string_view needle)
{
    if (needle.empty()) {
        return true;
    }
    const auto it = std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                                [](char x, char y) { return lower(x) == lower(y); });
    return it != text.end();
}

struct token {
    enum class kind { end, word, string, number, date, symbol } type = kind::end;
    std::string text;
    std::size_t pos = 0;
};

class tokenizer {
public:
    explicit tokenizer(std::string_view s) : s_(s) {}

    boost::system::result<token, std::string> next()
    {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) {
            ++i_;
        }
        token t;
        t.pos = i_;
        if (i_ >= s_.size()) {
            return t;
        }
        const char c = s_[i_];
        if (c == '"') {
            t.type = token::kind::string;
            ++i_;
            for (;;) {
                if (i_ >= s_.size()) {
                    return fmt::format("unterminated string at {}", t.pos);
                }
                const char d = s_[i_++];
                if (d == '"') {
                    break;
                }
                if (d == '\\' && i_ < s_.size()) {
                    t.text.push_back(s_[i_++]);
                    continue;
                }
                t.text.push_back(d);
            }
            return t;
        }
        if (c == '[') {
            const auto close = s_.find(']', i_);
            if (close == std::string_view::npos) {
                return fmt::format("unterminated date at {}", t.pos);
            }
            t.type = token::kind::date;
            t.text = std::string(s_.substr(i_ + 1, close - i_ - 1));
            i_ = close + 1;
            return t;
        }
        if (std::isdigit(static_cast<unsigned char>(c)) || (c == '-' && i_ + 1 < s_.size() &&
                                                             std::isdigit(static_cast<unsigned char>(s_[i_ + 1])))) {
            t.type = token::kind::number;
            t.text.push_back(c);
            ++i_;
            while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
                t.text.push_back(s_[i_++]);
            }
            return t;
        }
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            t.type = token::kind::word;
            while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' ||
                                      s_[i_] == '/' || s_[i_] == '.')) {
                t.text.push_back(s_[i_++]);
            }
            return t;
        }
        t.type = token::kind::symbol;
        if ((c == '!' || c == '<' || c == '>') && i_ + 1 < s_.size() && s_[i_ + 1] == '=') {
            t.text = std::string(s_.substr(i_, 2));
            i_ += 2;
            return t;
        }
        if (c == '=' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',') {
            t.text = std::string(1, c);
            ++i_;
            return t;
        }
        return fmt::format("unexpected character '{}' at {}", c, t.pos);
    }

private:
    std::string_view s_;
    std::size_t i_ = 0;
};

using node = conditions::node;
using literal = conditions::literal;

class parser {
public:
    explicit parser(std::string_view text) : tok_(text) {}

    boost::system::result<void, std::string> run(std::vector<node>& nodes, std::vector<std::string>& fields)
    {
        nodes_ = &nodes;
        fields_ = &fields;
        if (!advance()) {
            return error_;
        }
        if (cur_.type == token::kind::end) {
            nodes.push_back(node{});  // kind::all
            return {};
        }
        if (!expr(0)) {
            return error_;
        }
        if (cur_.type != token::kind::end) {
            return fmt::format("unexpected '{}' at {}", cur_.text, cur_.pos);
        }
        return {};
    }

private:
    bool advance()
    {
        auto t = tok_.next();
        if (!t) {
            error_ = t.error();
            return false;
        }
        cur_ = std::move(*t);
        return true;
    }

    bool fail(std::string why)
    {
        if (error_.empty()) {
            error_ = fmt::format("{} at {}", why, cur_.pos);
        }
        return false;
    }

    bool is_word(std::string_view w) const { return cur_.type == token::kind::word && iequals(cur_.text, w); }
    bool is_symbol(std::string_view s) const { return cur_.type == token::kind::symbol && cur_.text == s; }

    std::size_t push(node n)
    {
        nodes_->push_back(std::move(n));
        return nodes_->size() - 1;
    }

    bool binary(int depth, node::kind k, std::string_view keyword, bool (parser::*operand)(int))
    {
        if (!(this->*operand)(depth)) {
            return false;
        }
        while (is_word(keyword)) {
            const auto left = nodes_->size() - 1;
            if (!advance() || !(this->*operand)(depth)) {
                return false;
            }
            node n;
            n.type = k;
            n.left = left;
            n.right = nodes_->size() - 1;
            push(std::move(n));
        }
        return true;
    }

    bool expr(int depth)
    {
        if (depth > max_nesting) {
            return fail("conditions nested too deeply");
        }
        return binary(depth, node::kind::or_, "or", &parser::and_expr);
    }

    bool and_expr(int depth) { return binary(depth, node::kind::and_, "and", &parser::unary); }

    bool unary(int depth)
    {
        if (depth > max_nesting) {
            return fail("conditions nested too deeply");
        }
        if (is_word("not")) {
            if (!advance() || !unary(depth + 1)) {
                return false;
            }
            node n;
            n.type = node::kind::not_;
            n.left = nodes_->size() - 1;
            push(std::move(n));
            return true;
        }
        if (is_symbol("(")) {
            if (!advance() || !expr(depth + 1)) {
                return false;
            }
            if (!is_symbol(")")) {
                return fail("expected ')'");
            }
            return advance();
        }
        return comparison();
    }

    bool comparison()
    {
        if (cur_.type != token::kind::word) {
            return fail("expected a field name");
        }
        node n;
        n.type = node::kind::compare;
        n.field = lowered(cur_.text);
        if (!advance()) {
            return false;
        }
        if (is_word("not")) {
            n.negated = true;
            if (!advance()) {
                return false;
            }
        }
        if (is_word("contains")) {
            n.oper = conditions::op::contains;
        } else if (is_word("like")) {
            n.oper = conditions::op::like;
        } else if (is_word("in")) {
            n.oper = conditions::op::in;
        } else if (n.negated) {
            return fail("expected contains, like or in after not");
        } else if (is_symbol("=")) {
            n.oper = conditions::op::eq;
        } else if (is_symbol("!=")) {
            n.oper = conditions::op::ne;
        } else if (is_symbol("<")) {
            n.oper = conditions::op::lt;
        } else if (is_symbol("<=")) {
            n.oper = conditions::op::le;
        } else if (is_symbol(">")) {
            n.oper = conditions::op::gt;
        } else if (is_symbol(">=")) {
            n.oper = conditions::op::ge;
        } else {
            return fail("expected an operator");
        }
        if (!advance()) {
            return false;
        }
        if (n.oper == conditions::op::in) {
            if (!is_symbol("(")) {
                return fail("expected '(' after in");
            }
            if (!advance()) {
                return false;
            }
            for (;;) {
                auto v = value();
                if (!v) {
                    return false;
                }
                n.values.push_back(std::move(*v));
                if (is_symbol(",")) {
                    if (!advance()) {
                        return false;
                    }
                    continue;
                }
                if (!is_symbol(")")) {
                    return fail("expected ',' or ')'");
                }
                if (!advance()) {
                    return false;
                }
                break;
            }
        } else {
            auto v = value();
            if (!v) {
                return false;
            }
            n.values.push_back(std::move(*v));
        }
        if (std::find(fields_->begin(), fields_->end(), n.field) == fields_->end()) {
            fields_->push_back(n.field);
        }
        push(std::move(n));
        return true;
    }

    std::optional<literal> value()
    {
        literal l;
        switch (cur_.type) {
        case token::kind::string:
            l.type = literal::kind::string;
            l.text = cur_.text;
            break;
        case token::kind::date:
            l.type = literal::kind::date;
            l.text = cur_.text;
            break;
        case token::kind::number: {
            l.type = literal::kind::number;
            l.text = cur_.text;
            const auto* end = l.text.data() + l.text.size();
            if (std::from_chars(l.text.data(), end, l.number).ptr != end) {
                fail("number out of range");
                return std::nullopt;
            }
            break;
        }
        case token::kind::word:
            if (iequals(cur_.text, "true") || iequals(cur_.text, "false")) {
                l.type = literal::kind::boolean;
                l.boolean = iequals(cur_.text, "true");
                break;
            }
            if (iequals(cur_.text, "null")) {
                l.type = literal::kind::null;
                break;
            }
            fail(fmt::format("unquoted value '{}'", cur_.text));
            return std::nullopt;
        default:
            fail("expected a value");
            return std::nullopt;
        }
        if (!advance()) {
            return std::nullopt;
        }
        return l;
    }

    tokenizer tok_;
    token cur_;
    std::string error_;
    std::vector<node>* nodes_ = nullptr;
    std::vector<std::string>* fields_ = nullptr;
};

// The text a literal compares as against a string field.
std::string_view literal_text(const literal& l)
{
    switch (l.type) {
    case literal::kind::boolean: return l.boolean ? "true" : "false";
    case literal::kind::null: return "";
    default: return l.text;
    }
}

bool ordered(conditions::op o, int cmp)
{
    switch (o) {
    case conditions::op::eq: return cmp == 0;
    case conditions::op::ne: return cmp != 0;
    case conditions::op::lt: return cmp < 0;
    case conditions::op::le: return cmp <= 0;
    case conditions::op::gt: return cmp > 0;
    case conditions::op::ge: return cmp >= 0;
    default: return false;
    }
}

bool compare_text(std::string_view field, conditions::op o, const literal& l)
{
    const auto text = literal_text(l);
    switch (o) {
    case conditions::op::contains: return icontains(field, text);
    case conditions::op::like: return like_match(field, text);
    default: return ordered(o, icompare(field, text));
    }
}

// Microseconds since the epoch of an RFC 3339 date-time (a date alone is midnight UTC); nullopt
// for anything else (parse_time's durations included: "7d" is not a date here).
std::optional<std::int64_t> as_time(std::string_view text)
{
    if (text.size() < 10 || text[4] != '-') {
        return std::nullopt;
    }
    auto t = parse_time(text, 0);
    return t ? std::optional<std::int64_t>(*t) : std::nullopt;
}

bool compare_one(const conditions::field_value& v, conditions::op o, const literal& l)
{
    if (std::holds_alternative<std::monostate>(v) || l.type == literal::kind::null) {
        const bool both_null = std::holds_alternative<std::monostate>(v) && l.type == literal::kind::null;
        if (o == conditions::op::eq) {
            return both_null;
        }
        if (o == conditions::op::ne) {
            return !both_null;
        }
        return false;
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        if (l.type == literal::kind::boolean && (o == conditions::op::eq || o == conditions::op::ne)) {
            return (*b == l.boolean) == (o == conditions::op::eq);
        }
        return compare_text(*b ? "true" : "false", o, l);
    }
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
        if (l.type == literal::kind::number && o != conditions::op::contains && o != conditions::op::like) {
            return ordered(o, *n < l.number ? -1 : (*n > l.number ? 1 : 0));
        }
        return compare_text(std::to_string(*n), o, l);
    }
    if (l.type == literal::kind::date && o != conditions::op::contains && o != conditions::op::like) {
        // [2026-12-03T10:00:00Z] against "2026-12-03T10:00:00.000Z" (or another offset): compare
        // the points in time, not the text.
        const auto a = as_time(std::get<std::string>(v));
        const auto b = as_time(l.text);
        if (a && b) {
            return ordered(o, *a < *b ? -1 : (*a > *b ? 1 : 0));
        }
    }
    return compare_text(std::get<std::string>(v), o, l);
}

} // namespace

bool like_match(std::string_view text, std::string_view pattern)
{
    // Iterative wildcard match with one backtrack point (the last star seen).
    std::size_t t = 0;
    std::size_t p = 0;
    std::size_t star = std::string_view::npos;
    std::size_t mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '*' || pattern[p] == '%')) {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && lower(pattern[p]) == lower(text[t])) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && (pattern[p] == '*' || pattern[p] == '%')) {
        ++p;
    }
    return p == pattern.size();
}

boost::system::result<conditions, std::string> conditions::parse(std::string_view text)
{
    conditions c;
    parser p(text);
    if (auto r = p.run(c.nodes_, c.fields_); !r) {
        return r.error();
    }
    return c;
}

bool conditions::matches(const lookup& record) const
{
    return nodes_.empty() || eval(nodes_.size() - 1, record);
}

bool conditions::eval(std::size_t n, const lookup& record) const
{
    const node& x = nodes_[n];
    switch (x.type) {
    case node::kind::all: return true;
    case node::kind::and_: return eval(x.left, record) && eval(x.right, record);
    case node::kind::or_: return eval(x.left, record) || eval(x.right, record);
    case node::kind::not_: return !eval(x.left, record);
    case node::kind::compare: break;
    }
    const auto v = record(x.field);
    if (!v) {
        return false;
    }
    bool hit = false;
    if (x.oper == op::in) {
        hit = std::any_of(x.values.begin(), x.values.end(),
                          [&](const literal& l) { return compare_one(*v, op::eq, l); });
    } else {
        hit = compare_one(*v, x.oper, x.values.front());
    }
    return x.negated ? !hit : hit;
}

} // namespace cwhook::emulator
