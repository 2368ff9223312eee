package prompt

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func txt(s string) Segment { return Segment{Kind: KindText, Text: s} }
func speech(lang, gender, s string) Segment {
	return Segment{Kind: KindText, Text: s, Language: lang, Gender: gender}
}
func urlSeg(u string) Segment { return Segment{Kind: KindURL, URL: u} }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want []Segment
	}{
		{"empty", "", nil},
		{"whitespace", "  \n ", nil},
		{"plain", "Hello world", []Segment{txt("Hello world")}},
		{"entities", "Tom &amp; Jerry &lt;3 &gt; &quot;hi&quot; &apos;x&apos;", []Segment{txt(`Tom & Jerry <3 > "hi" 'x'`)}},
		{"numeric refs", "&#72;&#x49;&#X4a; &#20320;", []Segment{txt("HIJ 你")}},
		{"bare ampersand kept", "R&D & sales", []Segment{txt("R&D & sales")}},
		{"greater-than in text", "1 > 0", []Segment{txt("1 > 0")}},
		{"seed example", `<speech language="zh-HK" gender="female">請稍等,我們正在處理您的訂單。</speech>`,
			[]Segment{speech("zh-HK", "female", "請稍等,我們正在處理您的訂單。")}},
		{"url", `<url>http://example.com/myrecording.mp3</url>`, []Segment{urlSeg("http://example.com/myrecording.mp3")}},
		{"url trimmed, query ampersand", "<url>\n https://h/a.mp3?x=1&y=2&amp;z=3 </url>", []Segment{urlSeg("https://h/a.mp3?x=1&y=2&z=3")}},
		{"sequence", `Hi <speech language="fr">Bonjour</speech><url>http://h/a.wav</url> bye`,
			[]Segment{txt("Hi "), speech("fr", "", "Bonjour"), urlSeg("http://h/a.wav"), txt(" bye")}},
		{"whitespace between segments dropped", "<url>http://h/a.wav</url>\n  <url>http://h/b.gsm</url>",
			[]Segment{urlSeg("http://h/a.wav"), urlSeg("http://h/b.gsm")}},
		{"single quotes, spaces, case", `<SPEECH  Gender = 'male'	LANGUAGE="ko" >안녕</Speech >`, []Segment{speech("ko", "male", "안녕")}},
		{"attribute entities", `<speech language="en&#45;GB">x</speech>`, []Segment{speech("en-GB", "", "x")}},
		{"no attributes", `<speech>plain</speech>`, []Segment{txt("plain")}},
		{"empty speech dropped", `<speech language="fr"></speech>`, nil},
		{"self-closing speech", `a<speech/>b`, []Segment{txt("a"), txt("b")}},
		{"empty url kept", `<url></url>`, []Segment{urlSeg("")}},
		{"self-closing url", `<url/>`, []Segment{urlSeg("")}},
		{"comment", `one <!-- ignored <speech> --> two`, []Segment{txt("one  two")}},
		{"cdata", `<speech><![CDATA[a < b & c]]></speech>`, []Segment{txt("a < b & c")}},
		{"unknown language kept for Check", `<speech language="xx">x</speech>`, []Segment{speech("xx", "", "x")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.msg)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []string{
		"<speech>unclosed",
		"<url>http://h/a.mp3",
		"stray </speech>",
		"</url>",
		"<speech><url>http://h/a.mp3</url></speech>",
		"<speech>a<speech>b</speech></speech>",
		"<url><speech>x</speech></url>",
		"<b>bold</b>",
		"<speak>x</speak>",
		"<speech language=fr>x</speech>",
		`<speech language="fr>x</speech>`,
		`<speech language="fr"gender="male">x</speech>`,
		`<speech voice="x">x</speech>`,
		`<speech language="fr" language="de">x</speech>`,
		`<url href="x">http://h/a.mp3</url>`,
		`<speech language>x</speech>`,
		`<speech language="a<b">x</speech>`,
		"1 < 2",
		"<",
		"< speech>x</speech>",
		"<speech",
		"<speech>x</speech",
		"</speech x>",
		"<speech>x</url>",
		"&nbsp;",
		"&unknown;",
		"&#0;",
		"&#xD800;",
		"&#1114112;",
		"<!-- unterminated",
		"<![CDATA[ unterminated",
		"<?xml version='1.0'?>hello",
		"<!DOCTYPE x>hello",
	}
	for _, msg := range tests {
		t.Run(msg, func(t *testing.T) {
			_, err := Parse(msg)
			if StatusOf(err) != StatusInvalidXML {
				t.Fatalf("Parse(%q) err = %v, want %s", msg, err, StatusInvalidXML)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "hello", `<speech language="zh-HK" gender="female">請稍等</speech>`, "<url>http://h/a.mp3</url>",
		"a &amp; b &#x41; &#65; &x; &", "<speech><![CDATA[x]]></speech><!-- c -->", "<speech/><url/>",
		`<SPEECH Gender='m'>x</Speech >`, "</", "<a", "&#", "<![CDATA[", "<!--",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		segs, err := Parse(msg)
		if err != nil {
			if StatusOf(err) != StatusInvalidXML {
				t.Fatalf("error without the xml status: %v", err)
			}
			return
		}
		for _, s := range segs {
			switch s.Kind {
			case KindText:
				if strings.TrimSpace(s.Text) == "" || s.URL != "" {
					t.Fatalf("bad text segment %#v", s)
				}
			case KindURL:
				if s.Text != "" || s.Language != "" || s.Gender != "" || s.URL != strings.TrimSpace(s.URL) {
					t.Fatalf("bad url segment %#v", s)
				}
			default:
				t.Fatalf("bad kind %#v", s)
			}
		}
		// Text without markup characters parses to itself.
		if !strings.ContainsAny(msg, "<&") && strings.TrimSpace(msg) != "" {
			if len(segs) != 1 || segs[0].Text != msg {
				t.Fatalf("plain %q parsed to %#v", msg, segs)
			}
		}
		// Check never panics either, and agrees with Parse on xml errors.
		if utf8.ValidString(msg) {
			_ = (&Prompter{}).Check(msg)
		}
	})
}
