package prompt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind tells what a Segment plays.
type Kind int

const (
	KindText Kind = iota // Text is spoken with Language/Gender
	KindURL              // URL is downloaded and played
)

// Segment is one piece of a msg, played in order.
type Segment struct {
	Kind     Kind
	Text     string // KindText: the text, entities decoded
	Language string // KindText: the language attribute as written ("" = default)
	Gender   string // KindText: the gender attribute as written ("" = default)
	URL      string // KindURL: the trimmed element content, entities decoded
}

// Parse splits a msg into segments: plain text, <speech language=".." gender="..">text</speech>
// and <url>address</url>, in order. Tag and attribute names are case-insensitive; attribute
// values take double or single quotes. The five XML entities and numeric character references
// decode; an '&' that does not start something shaped like an entity ("&name;", "&#123;") is
// kept literally, so "R&D" and URLs with "&" in the query still work. Comments and CDATA
// sections are allowed. Nesting, unknown tags or attributes, stray or unclosed tags, a bare
// '<' and unknown entities are errors with StatusInvalidXML. Whitespace-only text between
// segments is dropped. Parse does not check languages, genders or URLs: Check does.
func Parse(msg string) ([]Segment, error) {
	p := parser{s: msg}
	if err := p.run(); err != nil {
		return nil, fail(StatusInvalidXML, err)
	}
	return p.out, nil
}

type parser struct {
	s    string
	i    int
	buf  strings.Builder // character data of the current element (or top level)
	open string          // "", "speech" or "url"
	cur  Segment         // the open element's segment
	out  []Segment
}

func (p *parser) run() error {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case '<':
			if err := p.markup(); err != nil {
				return err
			}
		case '&':
			if err := p.entity(&p.buf); err != nil {
				return err
			}
		default:
			p.buf.WriteByte(c)
			p.i++
		}
	}
	if p.open != "" {
		return fmt.Errorf("<%s> is not closed", p.open)
	}
	p.flushText()
	return nil
}

// flushText emits the top-level text gathered so far.
func (p *parser) flushText() {
	t := p.buf.String()
	p.buf.Reset()
	if strings.TrimSpace(t) != "" {
		p.out = append(p.out, Segment{Kind: KindText, Text: t})
	}
}

// markup handles everything that starts with '<' at p.i.
func (p *parser) markup() error {
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, "<!--"):
		end := strings.Index(rest[4:], "-->")
		if end < 0 {
			return errors.New("unterminated comment")
		}
		p.i += 4 + end + 3
		return nil
	case strings.HasPrefix(rest, "<![CDATA["):
		end := strings.Index(rest[9:], "]]>")
		if end < 0 {
			return errors.New("unterminated CDATA section")
		}
		p.buf.WriteString(rest[9 : 9+end])
		p.i += 9 + end + 3
		return nil
	}
	t, err := p.tag()
	if err != nil {
		return err
	}
	name := strings.ToLower(t.name)
	if name != "speech" && name != "url" {
		return fmt.Errorf("unknown tag <%s>", t.name)
	}
	if t.closing {
		if name != p.open {
			return fmt.Errorf("stray </%s>", t.name)
		}
		p.closeElement()
		return nil
	}
	if p.open != "" {
		return fmt.Errorf("<%s> inside <%s>", t.name, p.open)
	}
	p.flushText()
	seg := Segment{Kind: KindText}
	if name == "url" {
		seg.Kind = KindURL
	}
	seen := map[string]bool{}
	for _, a := range t.attrs {
		an := strings.ToLower(a.name)
		if seen[an] {
			return fmt.Errorf("duplicate attribute %s", a.name)
		}
		seen[an] = true
		switch {
		case name == "speech" && an == "language":
			seg.Language = a.value
		case name == "speech" && an == "gender":
			seg.Gender = a.value
		default:
			return fmt.Errorf("unknown attribute %s on <%s>", a.name, t.name)
		}
	}
	p.open, p.cur = name, seg
	if t.selfClosing {
		p.closeElement()
	}
	return nil
}

func (p *parser) closeElement() {
	content := p.buf.String()
	p.buf.Reset()
	seg := p.cur
	if seg.Kind == KindURL {
		seg.URL = strings.TrimSpace(content)
		p.out = append(p.out, seg)
	} else if strings.TrimSpace(content) != "" {
		seg.Text = content
		p.out = append(p.out, seg)
	}
	p.open, p.cur = "", Segment{}
}

type attr struct{ name, value string }

type tagInfo struct {
	name                 string
	closing, selfClosing bool
	attrs                []attr
}

// tag parses "<name attr='v'...>", "<name/>" or "</name>" at p.i.
func (p *parser) tag() (tagInfo, error) {
	var t tagInfo
	p.i++ // '<'
	if p.peek() == '/' {
		t.closing = true
		p.i++
	}
	t.name = p.name()
	if t.name == "" {
		return t, errors.New("'<' does not start a tag (write &lt;)")
	}
	for {
		hadSpace := p.space()
		switch c := p.peek(); {
		case c == '>':
			p.i++
			return t, nil
		case c == '/' && !t.closing && p.i+1 < len(p.s) && p.s[p.i+1] == '>':
			p.i += 2
			t.selfClosing = true
			return t, nil
		case c == 0:
			return t, fmt.Errorf("unterminated tag <%s", t.name)
		case t.closing || !hadSpace:
			return t, fmt.Errorf("malformed tag <%s", t.name)
		}
		a, err := p.attribute()
		if err != nil {
			return t, err
		}
		t.attrs = append(t.attrs, a)
	}
}

func (p *parser) attribute() (attr, error) {
	a := attr{name: p.name()}
	if a.name == "" {
		return a, errors.New("malformed attribute")
	}
	p.space()
	if p.peek() != '=' {
		return a, fmt.Errorf("attribute %s has no value", a.name)
	}
	p.i++
	p.space()
	q := p.peek()
	if q != '"' && q != '\'' {
		return a, fmt.Errorf("attribute %s value is not quoted", a.name)
	}
	p.i++
	var v strings.Builder
	for {
		switch c := p.peek(); {
		case c == 0:
			return a, fmt.Errorf("unterminated value of attribute %s", a.name)
		case c == q:
			p.i++
			a.value = v.String()
			return a, nil
		case c == '<':
			return a, fmt.Errorf("'<' in attribute %s", a.name)
		case c == '&':
			if err := p.entity(&v); err != nil {
				return a, err
			}
		default:
			v.WriteByte(c)
			p.i++
		}
	}
}

// peek returns the byte at p.i, or 0 at the end (a NUL inside markup is malformed anyway).
func (p *parser) peek() byte {
	if p.i >= len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) space() bool {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
	return p.i > start
}

func isNameByte(c byte, first bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' ||
		!first && (c >= '0' && c <= '9' || c == '-' || c == '.')
}

func (p *parser) name() string {
	start := p.i
	for p.i < len(p.s) && isNameByte(p.s[p.i], p.i == start) {
		p.i++
	}
	return p.s[start:p.i]
}

var namedEntities = map[string]string{"amp": "&", "lt": "<", "gt": ">", "quot": `"`, "apos": "'"}

// entity decodes the reference at p.i ('&') into w. Something not shaped like a reference is
// written as a literal '&'.
func (p *parser) entity(w *strings.Builder) error {
	rest := p.s[p.i+1:]
	semi := strings.IndexByte(rest, ';')
	if semi <= 0 || semi > 32 || !entityShaped(rest[:semi]) {
		w.WriteByte('&')
		p.i++
		return nil
	}
	ref := rest[:semi]
	p.i += 1 + semi + 1
	if ref[0] != '#' {
		v, ok := namedEntities[ref]
		if !ok {
			return fmt.Errorf("unknown entity &%s;", ref)
		}
		w.WriteString(v)
		return nil
	}
	var n uint64
	var err error
	if ref[1] == 'x' || ref[1] == 'X' {
		n, err = strconv.ParseUint(ref[2:], 16, 32)
	} else {
		n, err = strconv.ParseUint(ref[1:], 10, 32)
	}
	r := rune(n)
	if err != nil || n == 0 || n > utf8.MaxRune || !utf8.ValidRune(r) {
		return fmt.Errorf("invalid character reference &%s;", ref)
	}
	w.WriteRune(r)
	return nil
}

// entityShaped reports whether s (the text between '&' and ';') looks like a reference:
// a name, "#digits" or "#xhex".
func entityShaped(s string) bool {
	if s[0] == '#' {
		digits, hex := s[1:], false
		if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
			digits, hex = digits[1:], true
		}
		if digits == "" {
			return false
		}
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if !(c >= '0' && c <= '9' || hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}
