using System.Text.Json;
using MLNode.Engines.Llm.ChatTemplates;

namespace MLNode.Engines.Tests.ChatTemplates;

/// <summary>
/// Small templates whose expected output is what Python jinja2 3.1.6 renders with transformers' environment
/// (sandboxed, trim_blocks, lstrip_blocks, loopcontrols, tojson without ASCII escaping) for <see cref="Variables"/>.
/// </summary>
public sealed class ChatTemplateEngineTests
{
    private const string VariablesJson = "{\"items\": [3, 1, 2], \"d\": {\"b\": 2, \"a\": 1}, \"s\": \"  Hello World  \", \"n\": null, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": \"\u00e9\\n\\\"q\\\"\"}}}]}], \"f\": 2.5, \"t\": true}";

    private static readonly Dictionary<string, object?> Variables = JsonDocument.Parse(VariablesJson).RootElement
        .EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());

    private static string Render(string template) => ChatTemplate.Parse(template).Render(Variables);


    /// <summary>{%- -%}, {%+ +%}, trim_blocks, lstrip_blocks, comments, raw, the dropped final newline.</summary>
    [Theory]
    [InlineData("a  \n  {% if t %}\n    x\n  {% endif %}\nb", "a  \n    x\nb")]
    [InlineData("a {%- if t -%} b {%- endif -%} c", "abc")]
    [InlineData("  {%+ if t %}x{% endif %}", "  x")]
    [InlineData("{% if t +%}\nx{% endif %}", "\nx")]
    [InlineData("a\n  {# comment #}\nb", "a\nb")]
    [InlineData("a {{- 'x' -}}\n  b", "axb")]
    [InlineData("{{ 'x' }}\n{{ 'y' }}\n", "x\ny")]
    [InlineData("line\n\n", "line\n")]
    [InlineData("  {% raw %}{{ not evaluated }}{% endraw %}\nz", "{{ not evaluated }}z")]
    [InlineData("x {% if t %} y {% endif %} z", "x  y  z")]
    [InlineData("a\r\nb {% if t %}\r\nc{% endif %}", "a\nb c")]
    [InlineData("{% for i in items %}\n  {{ i }}\n{% endfor %}", "  3\n  1\n  2\n")]
    public void Whitespace_control_matches_jinja2_with_trim_and_lstrip_blocks(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>loop.*, else, inline if, unpacking, break/continue, per-iteration scope.</summary>
    [Theory]
    [InlineData("{% for i in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", "103TrueFalse3|212FalseFalse3|321FalseTrue3|")]
    [InlineData("{% for i in items if i > 1 %}{{ i }}{{ loop.last }}{% endfor %}", "3False2True")]
    [InlineData("{% for i in [] %}x{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=2;a=1;")]
    [InlineData("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}", "b=2;a=1;")]
    [InlineData("{% for i in items %}{% if i == 1 %}{% break %}{% endif %}{{ i }}{% endfor %}", "3")]
    [InlineData("{% for i in items %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}", "32")]
    [InlineData("{% set x = 0 %}{% for i in items %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", "312|0")]
    [InlineData("{% for i in items %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}", "-1,3-2,1-,")]
    [InlineData("{% for i in items %}{{ loop.cycle('a', 'b') }}{% endfor %}", "aba")]
    [InlineData("{% for m in msgs %}{% for c in m.content %}{{ loop.index }}{{ c }}{% endfor %}{% endfor %}", "1h2i1y2o")]
    [InlineData("{% for i in items %}{% set block %}{{ i }}{% if i == 1 %}{% break %}{% endif %}{% set i = 0 %}{% endset %}[{{ block }}{{ i }}]{% endfor %}|{{ [u, 1] }}", "[33]|[Undefined, 1]")]
    [InlineData("{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}", "012147")]
    [InlineData("{% for m in msgs[::-1] %}{{ m.role }}{% endfor %}", "assistantuser")]
    public void For_loops_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>namespace() attributes outlive loop iterations; block set captures rendered text.</summary>
    [Theory]
    [InlineData("{% set ns = namespace(count=0, seen=false) %}{% for i in items %}{% set ns.count = ns.count + i %}{% endfor %}{{ ns.count }}{{ ns.seen }}", "6False")]
    [InlineData("{% set ns = namespace(d) %}{{ ns.a }}{{ ns.b }}", "12")]
    [InlineData("{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12")]
    [InlineData("{% set block %}x {{ 1 + 1 }} y{% endset %}[{{ block }}]", "[x 2 y]")]
    [InlineData("{% set block | upper %}abc{% endset %}{{ block }}", "ABC")]
    public void Set_and_namespace_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>defaults, keyword arguments, varargs/kwargs, caller(), local scope, recursion, filter blocks.</summary>
    [Theory]
    [InlineData("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', greeting='Hi') }} {{ greet(greeting='Yo', name='Cy') }}", "Hello, Ann! Hi, Bob! Yo, Cy!")]
    [InlineData("{% macro m(a) %}[{{ a }}|{{ varargs }}|{{ kwargs }}]{% endmacro %}{{ m(1, 2, z=3) }}", "[1|(2,)|{'z': 3}]")]
    [InlineData("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner{% endcall %}", "<inner>")]
    [InlineData("{% macro row(x) %}{{ caller(x * 2) }}{% endmacro %}{% call(v) row(4) %}v={{ v }}{% endcall %}", "v=8")]
    [InlineData("{% macro m() %}{% set inner = 1 %}{{ inner }}{% endmacro %}{{ m() }}{{ inner is defined }}", "1False")]
    [InlineData("{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}", "3210")]
    [InlineData("{% filter upper %}shout {{ 'it' }}{% endfilter %}", "SHOUT IT")]
    public void Macros_and_call_blocks_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>the built-in filters and transformers' tojson.</summary>
    [Theory]
    [InlineData("{{ s|trim }}|{{ s|length }}|{{ s|upper }}|{{ s|lower }}|{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}", "Hello World|15|  HELLO WORLD  |  hello world  |Hello World|Hello")]
    [InlineData("{{ items|join(',') }}|{{ items|first }}|{{ items|last }}|{{ items|sort|list }}|{{ items|sort(reverse=true)|join }}|{{ items|max }}|{{ items|min }}|{{ items|sum }}", "3,1,2|3|2|[1, 2, 3]|321|3|1|6")]
    [InlineData("{{ u|default('fallback') }}|{{ ''|default('empty', true) }}|{{ n|default('x') }}", "fallback|empty|None")]
    [InlineData("{{ 'a-b-c'|replace('-', '+') }}|{{ 'a-b-c'|replace('-', '+', 1) }}", "a+b+c|a+b-c")]
    [InlineData("{{ '42'|int + 1 }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 3|float }}|{{ 2.567|round(2) }}|{{ 3.7|int }}", "43|4|0|3.0|2.57|3")]
    [InlineData("{{ msgs|map(attribute='role')|join(',') }}|{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}|{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|first }}", "user,assistant|1|yo")]
    [InlineData("{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('even')|list }}|{{ ['a', 'B']|map('upper')|list }}", "[1, 3]|[1, 3]|['A', 'B']")]
    [InlineData("{{ d|dictsort }}|{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ msgs[1].tool_calls[0]|tojson }}", "[('a', 1), ('b', 2)]|{\"b\": 2, \"a\": 1}|{\n  \"b\": 2,\n  \"a\": 1\n}|{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": \"\u00e9\\n\\\"q\\\"\"}}}")]
    [InlineData("{{ ['b', 'A', 'a', 'B']|unique|list }}|{{ ['b', 'A', 'c']|sort|list }}|{{ d|list }}|{{ 'abc'|list }}|{{ 'abc'|reverse }}", "['b', 'A']|['A', 'b', 'c']|['b', 'a']|['a', 'b', 'c']|cba")]
    [InlineData("{{ 'one\ntwo\n\nthree'|indent(2) }}|{{ 'x\ny'|indent(4, true) }}", "one\n  two\n\n  three|    x\n    y")]
    [InlineData("{{ 42|string ~ '!' }}|{{ n|string }}|{{ t|string }}|{{ f|string }}|{{ items|string }}|{{ '<a>'|e }}|{{ '<a>'|safe }}", "42!|None|True|2.5|[3, 1, 2]|&lt;a&gt;|<a>")]
    [InlineData("{{ '%s is %d'|format('x', 3) }}|{{ 'hi there you'|wordcount }}|{{ -3|abs }}|{{ [[1, 2], [3]]|map('length')|list }}", "x is 3|3|3|[2, 1]")]
    [InlineData("{{ '%5.2f|%-4d|%04d|%+d|%s|%.2s|%r|%x|%%|%e|%(a)s'|replace('%(a)s', '') % (3.14159, 7, -42, 5, none, 'abc', 'q', 255, 12345.678) }}|{{ '%(name)s=%(v)03d' % {'name': 'n', 'v': 7} }}|{{ '%d items'|format(3) }}|{{ 3|round }}|{{ 2.5|round }}|{{ 3.14159|round(2, 'floor') }}", " 3.14|7   |-042|+5|None|ab|'q'|ff|%|1.234568e+04||n=007|3 items|3|2.0|3.14")]
    [InlineData("{{ 'x'|center(5) }}|{{ msgs|map(attribute='missing', default='?')|join }}|{{ d|items|list }}|{{ 'aXb'|trim('ab') }}", "  x  |??|[('b', 2), ('a', 1)]|X")]
    public void Filters_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>`is` tests, with bool counting as a number as in Python.</summary>
    [Theory]
    [InlineData("{{ u is defined }}{{ u is undefined }}{{ n is none }}{{ 1 is number }}{{ t is number }}{{ t is boolean }}{{ 1 is integer }}{{ f is float }}", "FalseTrueTrueTrueTrueTrueTrueTrue")]
    [InlineData("{{ 's' is string }}{{ d is mapping }}{{ items is mapping }}{{ items is iterable }}{{ 's' is iterable }}{{ 1 is iterable }}{{ items is sequence }}", "TrueTrueFalseTrueTrueFalseTrue")]
    [InlineData("{{ 0.5 is even }}{{ 2.0 is even }}{{ -1.5 is odd }}{{ '2.5' is lower }}{{ 'a2' is lower }}{{ 'A b' is upper }}{{ true|round }}{{ 7|round(1) }}", "FalseTrueFalseFalseTrueFalse17")]
    [InlineData("{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 2 is gt 1 }}{{ 2 is lt 1 }}{{ 1 is in items }}", "TrueFalseTrueTrueFalseTrueFalseTrue")]
    [InlineData("{{ t is true }}{{ 1 is true }}{{ false is false }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ n is sameas none }}{{ range is callable }}{{ u is not defined }}", "TrueFalseTrueTrueTrueTrueTrueTrue")]
    public void Tests_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>constructs taken from Seed-OSS, Mistral, Command-R, Kimi-K2-Thinking, GLM-4.6 and Nemotron templates.</summary>
    [Theory]
    [InlineData("{{- '<TOOLCALL>[{{\"name\": \"x\"}}, {# not a comment #}' -}}|{% with a = 1, b = items %}{{ a }}{{ b|length }}{% endwith %}{{ a is defined }}", "<TOOLCALL>[{{\"name\": \"x\"}}, {# not a comment #}|13False")]
    [InlineData("{{ msgs[1].tool_calls|tojson(ensure_ascii=True) }}|{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ items|tojson(indent='\t') }}", "[{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": \"\\u00e9\\n\\\"q\\\"\"}}}]|{\"a\": 1, \"b\": 2}|{\"b\":2,\"a\":1}|[\n\t3,\n\t1,\n\t2\n]")]
    [InlineData("{%- set budget = {\n     0:      0,\n     512:    128,\n     1024:   256\n} -%}\n{%- set ns = namespace(interval = None) -%}\n{%- for k, v in budget | dictsort -%}\n    {%- if ns.interval is none and 600 <= k -%}\n        {%- set ns.interval = v -%}\n    {%- endif -%}\n{%- endfor -%}\n{{ ns.interval }}|{{ budget[512] }}", "256|128")]
    [InlineData("{%- macro py_type(t) -%}\n    {%- if t == \"string\" -%}str\n    {%- elif t in (\"number\", \"integer\") -%}int\n    {%- else -%}Any{%- endif -%}\n{%- endmacro -%}\n{{ py_type('string') }},{{ py_type('integer') }},{{ py_type('x') }}", "str,int,Any")]
    [InlineData("{%- set m = \"line one.\\\nline two \\\"q\\\"\" %}{{ m }}", "line one.line two \"q\"")]
    [InlineData("{%- for key, val in d.items() if key != \"b\" %}{{ key }}={{ val }}{% if not loop.last %}, {% endif %}{% endfor %}|{% set out = d|tojson %}{{ out[:-1] }}|{{ msgs[0] == msgs[0] }}{{ msgs[0] == msgs[1] }}|{{ msgs[1].get('tool_calls')|length }}{{ msgs[0].get('tool_calls') }}", "a=1|{\"b\": 2, \"a\": 1|TrueFalse|1None")]
    [InlineData("{%- set seen = namespace(value=[]) %}{%- for m in msgs %}{%- for later in msgs[loop.index0 + 1:] %}{%- if later.role|lower == 'assistant' %}{%- set seen.value = seen.value + [later.content] %}{%- else %}{%- break %}{%- endif %}{%- endfor %}{%- endfor %}{{ seen.value }}", "['yo']")]
    [InlineData("{%- set ns = namespace(last=-1) -%}\n{%- for idx in range(msgs|length-1, -1, -1) -%}\n    {%- if msgs[idx]['role'] == 'user' -%}\n        {%- set ns.last = idx -%}\n        {%- break -%}\n    {%- endif -%}\n{%- endfor -%}\n{{ ns.last }}|{{ msgs[:ns.last+1]|length }}|{{ msgs[ns.last+1:]|length }}", "0|1|1")]
    [InlineData("{% macro set_roles(message) -%}\n  {%- set role_name =  message.get('name') or  message['role'] -%}\n  {%- if message['role'] == 'user' -%}\n    <|im_user|>{{role_name}}<|im_middle|>\n  {%- else -%}\n    <|im_system|>{{role_name}}<|im_middle|>\n  {%- endif -%}\n{%- endmacro -%}\n{%- for m in msgs -%}\n  {{set_roles(m)}}\n  {%- if m.role == 'assistant' -%}\n    <think></think>{{ m.content }}\n  {%- endif -%}\n  <|im_end|>\n{%- endfor -%}", "<|im_user|>user<|im_middle|><|im_end|><|im_system|>assistant<|im_middle|><think></think>yo<|im_end|>")]
    [InlineData("{% for tc in msgs[1].tool_calls %}\n{%- if tc.function %}\n    {%- set tc = tc.function %}\n{%- endif %}\n{{ '\\n<tool_call>' + tc.name }}\n{% set _args = tc.arguments or {} %}\n{% for k, v in _args.items() %}\n<arg_key>{{ k }}</arg_key>\n<arg_value>{{ v | tojson(ensure_ascii=False) if v is not string else v }}</arg_value>\n{% endfor %}\n</tool_call>{% endfor %}", "\n<tool_call>f\n<arg_key>x</arg_key>\n<arg_value>1</arg_value>\n<arg_key>y</arg_key>\n<arg_value>\u00e9\n\"q\"</arg_value>\n</tool_call>")]
    [InlineData("{%- set ns = namespace(a='') -%}{%- set ns.b = (n | default('', true)).replace('x', '').strip() -%}[{{ ns.b }}]{{ 'tool_calls' in msgs[1] }}{{ 'tool_calls' in msgs[0] }}{%- set msgs2 = msgs[1:] if msgs[0]['role'] == 'user' else msgs -%}{{ msgs2|length }}", "[]TrueFalse1")]
    [InlineData("<|system|>\n{% for tool in items %}\n{{ tool }}\n{% endfor %}\n</tools>{%- if t -%}\nX{%- endif -%}\n  <|assistant|>{{- '\\n<think></think>' if (u is defined and not u) else '' -}}\nend", "<|system|>\n3\n1\n2\n</tools>X<|assistant|>end")]
    [InlineData("{{ bos }}{%- macro doc(items) -%}\n{# comment in macro #}\n<|START|>[\n{% for i in items %}\n    \"{{ loop.index0 }}\": {{ i|tojson }}{% if not loop.last %},\n    {% endif %}\n{% endfor %}\n\n]<|END|>{%- endmacro %}\n{{ doc(items) }}", "<|START|>[\n    \"0\": 3,\n    \"1\": 1,\n    \"2\": 2\n]<|END|>")]
    [InlineData("{%- if msgs[1].tool_calls is defined\n      and msgs[1].tool_calls is iterable\n      and msgs[1].tool_calls | length > 0 %}\nyes\n{%- endif %}", "yes")]
    [InlineData("{{ \"\\n\" + 'a' + s | trim + 'b' }}|{{ s | trim | length > 0 }}|{{ (msgs | selectattr('role', 'equalto', 'user') | list)[-1].content }}", "\naHello Worldb|True|hi")]
    public void Idioms_of_real_chat_templates_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>arithmetic, literals and their repr, string escapes, slicing, str methods, undefined values.</summary>
    [Theory]
    [InlineData("{{ 'stra\u00dfe'|upper }}|{{ '\u0130x'.lower() }}|{{ '\u01c6ungla \u00dfa'.title() }}|{{ '\u00dfa'|capitalize }}|{{ 'a\u001cb c'|title }}|{{ ['a\u00a0b', 'x\u200by', '\ud83e\udd16'] }}|{{ '\ud83e\udd16 x'.find('x') }}", "STRASSE|i\u0307x|\u01c5ungla Ssa|Ssa|A\u001cB C|['a\\xa0b', 'x\\u200by', '\ud83e\udd16']|2")]
    [InlineData("{{ ''.splitlines() }}|{{ 'a\r\nb\rc\n'.splitlines() }}|{{ 'a\r\nb'|indent(2) }}|{{ ' a b  '.split(none, 0) }}|{{ 'a b  '.split(none, 1) }}|{{ ''.replace('', 'Z', 2) }}|{{ 'ab'.replace('', '-') }}|{{ 'ab'.replace('', '-', 1) }}", "[]|['a', 'b', 'c']|a\n  b|['a b  ']|['a', 'b  ']|Z|-a-b-|-ab")]
    [InlineData("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 2 ** 10 }}|{{ 1e3 }}|{{ 0.1 + 0.2 }}|{{ 1.5e-7 }}|{{ 1e20 }}", "7|9|3|-4|1|2|3.5|2.0|1024|1000.0|0.30000000000000004|1.5e-07|1e+20")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ -f }}|{{ 3 - 1.5 }}", "a1NoneTrue|ababab|[1, 2]|-2.5|1.5")]
    [InlineData("{{ 1 < 2 < 3 }}{{ 1 < 3 < 2 }}{{ 'a' in 'cat' }}{{ 'x' not in d }}{{ 'a' in d }}{{ not t }}{{ [1, 2] == [1, 2] }}{{ 1 == 1.0 }}{{ 'a' < 'b' }}", "TrueFalseTrueTrueTrueFalseTrueTrueTrue")]
    [InlineData("{{ t and 'yes' }}|{{ n or 'no' }}|{{ 0 or '' }}|{{ 'x' if t else 'y' }}|{{ 'x' if n else 'y' }}|{{ 'x' if n }}|", "yes|no||x|y||")]
    [InlineData("{{ s[2:7] }}|{{ items[-1] }}|{{ items[::-1] }}|{{ items[1:] }}|{{ 'hello'[::2] }}|{{ items[:-1] }}|{{ 'h\u00e9llo\ud83e\udd16'[-1] }}|{{ 'h\u00e9llo\ud83e\udd16'|length }}", "Hello|2|[2, 1, 3]|[1, 2]|hlo|[3, 1]|\ud83e\udd16|6")]
    [InlineData("{{ d.a }}{{ d['b'] }}{{ d.get('a') }}{{ d.get('z', 9) }}{{ d.keys()|list }}{{ d.values()|list }}{{ msgs[0]['role'] }}{{ msgs.0.role }}", "1219['b', 'a'][2, 1]useruser")]
    [InlineData("{{ [1, 'a', none, true, 1.0, {'k': [1, (2, 3)]}] }}|{{ (1,) }}|{{ ('a', 2) }}|{{ {'q': \"it's\"} }}|{{ \"a\\\\b\" }}", "[1, 'a', None, True, 1.0, {'k': [1, (2, 3)]}]|(1,)|('a', 2)|{'q': \"it's\"}|a\\b")]
    [InlineData("{{ 'a\\tb\\n' }}|{{ 'x\\u00e9\\x41' }}|{{ \"q\\\"q\" }}|{{ 'ab' 'cd' }}|{{ '\\d' }}", "a\tb\n|x\u00e9A|q\"q|abcd|\\d")]
    [InlineData("{{ 'Hello World'.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}|{{ 'x\\n\\n'.rstrip() }}", "['Hello', 'World']|['a', 'b', '', 'c']|['a', 'b,c']|['a,b', 'c']|x|a|x\n|x")]
    [InlineData("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ 'a b'.title() }}{{ 'abcabc'.find('c') }}{{ 'abcabc'.count('b') }}{{ 'a-b'.replace('-', '') }}", "TrueTrueABCabcA B22ab")]
    [InlineData("{{ '{} and {}'.format(1, 'x') }}|{{ '{name}!'.format(name='Al') }}|{{ '-'.join(['a', 'b']) }}|{{ 'x'.join('abc') }}", "1 and x|Al!|a-b|axbxc")]
    [InlineData("{{ u }}|{{ u|length }}|{{ n.x }}|{{ d.missing }}|{{ items[10] }}|{% for x in u %}never{% endfor %}|{{ u == u }}", "|0|||||True")]
    public void Expressions_match_jinja2(string template, string expected) => Assert.Equal(expected, Render(template));


    /// <summary>Errors carry Python's message: the exception type then its text, or raise_exception's own message.</summary>
    [Theory]
    [InlineData("{{ u|float }}", "UndefinedError: 'u' is undefined")]
    [InlineData("{{ 'abc' % 'x' }}", "TypeError: not all arguments converted during string formatting")]
    [InlineData("{{ [1] in {} }}", "TypeError: unhashable type: 'list'")]
    [InlineData("{{ n ** -1 }}", "TypeError: unsupported operand type(s) for ** or pow(): 'NoneType' and 'int'")]
    [InlineData("{% set z = 0 %}{{ z ** -1 }}", "ZeroDivisionError: 0.0 cannot be raised to a negative power")]
    [InlineData("{% set z = 5 %}{{ z[1:] }}", "TypeError: 'int' object is not subscriptable")]
    [InlineData("{{ '%d' % 'x' }}", "TypeError: %d format: a real number is required, not str")]
    [InlineData("{{ '%s %s' % (1,) }}", "TypeError: not enough arguments for format string")]
    [InlineData("{{ items[10].x }}", "UndefinedError: list object has no element 10")]
    [InlineData("{{ d.c.e }}", "UndefinedError: 'dict object' has no attribute 'c'")]
    [InlineData("{{ n[0].x }}", "UndefinedError: None has no element 0")]
    [InlineData("{{ n.x.y }}", "UndefinedError: 'None' has no attribute 'x'")]
    [InlineData("{{ u < 1 }}", "UndefinedError: 'u' is undefined")]
    [InlineData("{{ u.attr }}", "UndefinedError: 'u' is undefined")]
    [InlineData("{{ u() }}", "UndefinedError: 'u' is undefined")]
    [InlineData("{{ 'a' + 1 }}", "TypeError: can only concatenate str (not \"int\") to str")]
    [InlineData("{{ 1 + 'a' }}", "TypeError: unsupported operand type(s) for +: 'int' and 'str'")]
    [InlineData("{{ [1] + 'a' }}", "TypeError: can only concatenate list (not \"str\") to list")]
    [InlineData("{{ raise_exception('custom failure') }}", "custom failure")]
    [InlineData("{{ 1 / 0 }}", "ZeroDivisionError: division by zero")]
    [InlineData("{{ 'a' < 1 }}", "TypeError: '<' not supported between instances of 'str' and 'int'")]
    [InlineData("{{ 5 in 'abc' }}", "TypeError: 'in <string>' requires string as left operand, not int")]
    [InlineData("{% for a, b in [[1, 2, 3]] %}{% endfor %}", "ValueError: too many values to unpack (expected 2)")]
    [InlineData("{% set x = 1 %}{% set x.y = 2 %}", "cannot assign attribute on non-namespace object")]
    [InlineData("{{ d|tojson|tojson }}{{ u|tojson }}", "TypeError: Object of type Undefined is not JSON serializable")]
    [InlineData("{% for x in n %}{% endfor %}", "TypeError: 'NoneType' object is not iterable")]
    public void Runtime_errors_carry_python_messages(string template, string message) =>
        Assert.Equal(message, Assert.Throws<ChatTemplateException>(() => Render(template)).Message);

    /// <summary>Malformed templates, unknown tags and unknown filters fail at Parse, as jinja2 fails at compile time.</summary>
    [Theory]
    [InlineData("{% break %}")]
    [InlineData("{% for i in items %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}")]
    [InlineData("{% if t %}x")]
    [InlineData("{{ 1 + }}")]
    [InlineData("{% for x in items %}")]
    [InlineData("{{ x|nosuchfilter }}")]
    [InlineData("{% endif %}")]
    [InlineData("{% unknowntag %}")]
    [InlineData("{{ 'unterminated }}")]
    [InlineData("{# never closed")]
    public void Syntax_errors_fail_at_parse(string template) =>
        Assert.StartsWith("TemplateSyntaxError", Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template)).Message);
}
