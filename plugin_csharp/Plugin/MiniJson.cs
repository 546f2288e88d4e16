// A small JSON reader for the plugin's config file (objects, arrays, strings, numbers, true,
// false, null), so that each entry can be checked on its own and named in a message; no JSON
// assembly is added next to Eclipse's.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Rtplan.Plugin
{
    public sealed class JsonFormatException : Exception
    {
        public JsonFormatException(string message) : base(message)
        {
        }
    }

    public static class MiniJson
    {
        /// <summary>Dictionary&lt;string, object&gt;, List&lt;object&gt;, string, double, bool or null.</summary>
        public static object Parse(string text)
        {
            var reader = new Reader(text ?? "");
            object value = reader.Value();
            reader.SkipSpace();
            if (!reader.AtEnd)
                throw reader.Error("unexpected text after the JSON value");
            return value;
        }

        private sealed class Reader
        {
            private readonly string _s;
            private int _i;

            internal Reader(string s)
            {
                _s = s;
            }

            internal bool AtEnd { get { return _i >= _s.Length; } }

            internal JsonFormatException Error(string what)
            {
                int line = 1;
                for (int k = 0; k < _i && k < _s.Length; k++)
                    if (_s[k] == '\n')
                        line++;
                return new JsonFormatException(string.Format(CultureInfo.InvariantCulture, "{0} (line {1})", what, line));
            }

            internal void SkipSpace()
            {
                while (!AtEnd && char.IsWhiteSpace(_s[_i]))
                    _i++;
            }

            private char Peek()
            {
                SkipSpace();
                if (AtEnd)
                    throw Error("unexpected end of the file");
                return _s[_i];
            }

            private void Expect(char c)
            {
                if (Peek() != c)
                    throw Error("expected '" + c + "'");
                _i++;
            }

            internal object Value()
            {
                char c = Peek();
                if (c == '{') return Obj();
                if (c == '[') return Arr();
                if (c == '"') return Str();
                if (Word("true")) return true;
                if (Word("false")) return false;
                if (Word("null")) return null;
                return Num();
            }

            private bool Word(string w)
            {
                if (string.CompareOrdinal(_s, _i, w, 0, w.Length) != 0)
                    return false;
                _i += w.Length;
                return true;
            }

            private Dictionary<string, object> Obj()
            {
                var d = new Dictionary<string, object>(StringComparer.Ordinal);
                Expect('{');
                if (Peek() == '}') { _i++; return d; }
                while (true)
                {
                    if (Peek() != '"')
                        throw Error("expected a quoted key");
                    string key = Str();
                    Expect(':');
                    if (d.ContainsKey(key))
                        throw Error("the key \"" + key + "\" appears twice");
                    d[key] = Value();
                    char c = Peek();
                    _i++;
                    if (c == '}') return d;
                    if (c != ',') { _i--; throw Error("expected ',' or '}'"); }
                }
            }

            private List<object> Arr()
            {
                var a = new List<object>();
                Expect('[');
                if (Peek() == ']') { _i++; return a; }
                while (true)
                {
                    a.Add(Value());
                    char c = Peek();
                    _i++;
                    if (c == ']') return a;
                    if (c != ',') { _i--; throw Error("expected ',' or ']'"); }
                }
            }

            private string Str()
            {
                Expect('"');
                var b = new StringBuilder();
                while (true)
                {
                    if (AtEnd)
                        throw Error("unterminated string");
                    char c = _s[_i++];
                    if (c == '"') return b.ToString();
                    if (c != '\\') { b.Append(c); continue; }
                    if (AtEnd)
                        throw Error("unterminated string");
                    char e = _s[_i++];
                    switch (e)
                    {
                        case '"': b.Append('"'); break;
                        case '\\': b.Append('\\'); break;
                        case '/': b.Append('/'); break;
                        case 'b': b.Append('\b'); break;
                        case 'f': b.Append('\f'); break;
                        case 'n': b.Append('\n'); break;
                        case 'r': b.Append('\r'); break;
                        case 't': b.Append('\t'); break;
                        case 'u':
                            if (_i + 4 > _s.Length)
                                throw Error("bad \\u escape");
                            b.Append((char)int.Parse(_s.Substring(_i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                            _i += 4;
                            break;
                        default: throw Error("bad escape \\" + e);
                    }
                }
            }

            private double Num()
            {
                int start = _i;
                while (!AtEnd && "+-0123456789.eE".IndexOf(_s[_i]) >= 0)
                    _i++;
                double v;
                if (_i == start || !double.TryParse(_s.Substring(start, _i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out v))
                    throw Error("expected a JSON value");
                return v;
            }
        }
    }
}
