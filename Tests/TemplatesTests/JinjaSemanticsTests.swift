// Jinja semantics beyond the fixture templates, each case checked against jinja2 3.1.6 in the
// environment transformers builds (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, transformers' tojson); plus the errors of unsupported or malformed templates.

import Foundation
import Templates
import Testing

@Suite struct JinjaSemanticsTests {
    /// (template, variables as JSON, what jinja2 renders).
    static let cases: [(String, String, String)] = [
        ("{{ 7 / 2 }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 1 + 2 * 3 }}|{{ 'a' ~ 1 ~ none }}",
         "{}",
         "3.5|3|2|1024|7|a1None"),
        ("{{ [1, 'a', none, true, 1.5, {'k': 'v'}] }}|{{ (1, 2) }}|{{ 1.0 }}|{{ 1e-5 }}|{{ 3.14 }}",
         "{}",
         "[1, 'a', None, True, 1.5, {'k': 'v'}]|(1, 2)|1.0|1e-05|3.14"),
        ("{{ 'abc'[::-1] }}|{{ 'abcdef'[1:4] }}|{{ 'abcdef'[-2:] }}|{{ [1,2,3,4,5][::2] }}|{{ [1,2,3][5:] }}|{{ 'abc'[-1] }}",
         "{}",
         "cba|bcd|ef|[1, 3, 5]|[]|c"),
        ("{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ {} | tojson }}",
         "{\"x\": {\"b\": 1, \"a\": [1.5, \"é\\n\\\"\", null, true, {}]}}",
         "{\"b\": 1, \"a\": [1.5, \"é\\n\\\"\", null, true, {}]}|{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    \"é\\n\\\"\",\n    null,\n    true,\n    {}\n  ]\n}|[]|{}"),
        ("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a  b '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}",
         "{}",
         "a b|a|['a', 'b']|['a', 'b', '', 'c']|['a', 'b,c']|['a b', 'c']"),
        ("{{ 'hello world'.title() }}|{{ \"they're bill's\".title() }}|{{ 'hello-world foo' | title }}|{{ 'ABC'.lower() }}|{{ 'abc'.upper() }}|{{ 'aaa'.replace('a', 'b', 2) }}",
         "{}",
         "Hello World|They'Re Bill'S|Hello-World Foo|abc|ABC|bba"),
        ("{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith('bc') }}|{{ 'b' in 'abc' }}|{{ 2 in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ 3 not in [1] }}",
         "{}",
         "True|True|True|True|True|True"),
        ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d | items %}{{ k }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}",
         "{\"d\": {\"z\": 1, \"a\": 2}}",
         "z=1;a=2;|za|za"),
        ("{% for i in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('a','b') }}-{% endfor %}",
         "{}",
         "1032TrueFalse3a-2121FalseFalse3b-3210FalseTrue3a-"),
        ("{% for i in [1,2,3,4] if i is odd %}{{ i }}{{ loop.index }}{% else %}none{% endfor %}|{% for i in [] %}x{% else %}empty{% endfor %}",
         "{}",
         "1132|empty"),
        ("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
         "{}",
         "02"),
        ("{% set ns = namespace(a=1) %}{% for i in [1,2] %}{% set ns.a = ns.a + i %}{% set b = i %}{% endfor %}{{ ns.a }}{{ b is defined }}",
         "{}",
         "4False"),
        ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(name='c') }}",
         "{}",
         "Hi a! Hi b? Hi c!"),
        ("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]",
         "{}",
         "[inner 2]"),
        ("{{ undefined_var }}|{{ undefined_var is defined }}|{{ undefined_var | default('d') }}|{{ '' | default('e', true) }}|{{ undefined_var | length }}|{{ none is none }}",
         "{}",
         "|False|d|e|0|True"),
        ("{{ 1 if false }}|{{ 'y' if 1 > 0 else 'n' }}|{{ not 1 == 2 }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 0 or 'x' }}|{{ 1 and 'y' }}",
         "{}",
         "|y|True|True|False|x|y"),
        ("{{ [3,1,2] | first }}{{ [3,1,2] | last }}{{ 'abc' | first }}|{{ [1,2] | join(', ') }}|{{ ['a','b'] | join }}|{{ 'ab' | list }}|{{ 12 | string }}|{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}",
         "{}",
         "32a|1, 2|ab|['a', 'b']|12|x|hi"),
        ("{{ 'a' is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ {} is mapping }}{{ 'a' is iterable }}{{ 1 is iterable }}{{ [] is sequence }}{{ true is boolean }}{{ false is false }}{{ 0 is false }}",
         "{}",
         "TrueTrueTrueTrueTrueTrueFalseTrueTrueTrueFalse"),
        ("  {% if true %}\n    x\n  {% endif %}\n  {{ 'y' }}  \n{# comment #}\nz\n",
         "{}",
         "    x\n  y  \nz"),
        ("a  {%- if true -%}  b  {%- endif -%}  c\n  {{- 'd' -}}  \n e {%+ if true %}f{% endif +%}\ng",
         "{}",
         "abcde f\ng"),
        ("{% if a %}A{% elif b %}B{% else %}C{% endif %}{% if not a and not b %}!{% endif %}",
         "{\"a\": false, \"b\": true}",
         "B"),
        ("{{ x.content }}|{{ x['content'] }}|{{ x.missing }}|{{ x.get('missing', 'dflt') }}|{{ x.get('content') }}|{{ x.keys() | list }}",
         "{\"x\": {\"content\": \"hi\"}}",
         "hi|hi||dflt|hi|['content']"),
        ("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|{{ msgs | rejectattr('role', 'eq', 'user') | list | length }}|{{ msgs | map(attribute='role') | list }}",
         "{\"msgs\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}]}",
         "a,c|1|['user', 'assistant', 'user']"),
        ("{{ \"it's\" }}|{{ ['it\\'s', 'a\"b'] }}|{{ 'tab\\there' }}|{{ '\\u00e9' }}|{{ 'a' 'b' }}",
         "{}",
         "it's|[\"it's\", 'a\"b']|tab\there|é|ab"),
        ("{{ -1 | abs }}|{{ '3' | int + 1 }}|{{ 2.5 | int }}|{{ '1.5' | float }}|{{ [1,2] | reverse | list }}|{{ 'ab' | reverse }}|{{ 'hello' | capitalize }}|{{ 'Hello' | upper }}",
         "{}",
         "1|4|2|1.5|[2, 1]|ba|Hello|HELLO"),
        ("{{ 'x' * 3 }}|{{ [1] * 2 }}|{{ [1] + [2] }}|{{ 10 / 4 }}|{{ 1 + 1.5 }}|{{ true + 1 }}|{{ 1 == 1.0 }}|{{ 'a' < 'b' }}",
         "{}",
         "xxx|[1, 1]|[1, 2]|2.5|2.5|2|True|True"),
        ("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% set p, q = 1, 2 %}{{ p }}{{ q }}|{{ loop is defined }}",
         "{}",
         "37|12|False"),
        ("{% for m in msgs %}{{ loop.previtem | default('none') }}>{{ loop.nextitem | default('end') }} {% endfor %}",
         "{\"msgs\": [1, 2, 3]}",
         "none>2 1>3 2>end "),
        ("{{ '%d %b %Y' }}|{{ x.strip() }}|{{ x.lstrip('\\n') }}|{{ x.rstrip() }}|{{ ' \\u00a0a\\u3000 '.strip() }}|{{ 'a\\u2028b'.split() }}",
         "{\"x\": \"\\n\\n a \\n\"}",
         "%d %b %Y|a| a \n|\n\n a|a|['a', 'b']"),
        ("{% for m in messages %}{% if m.content is string %}S:{{ m.content }}{% else %}{% for p in m.content %}{% if p.type == 'text' %}{{ p.text }}{% else %}<img>{% endif %}{% endfor %}{% endif %}|{% endfor %}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "S:Sys é|Hi<img> there|S:<think>\nplan\n</think>\n\nAnswer|S:42|"),
        ("{{ messages[1].content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') }}|{{ messages | map(attribute='role') | join(',') }}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "Hi there|system,user,assistant,tool"),
        ("{% for m in messages %}{% for t in m.tool_calls | default([]) %}{{ loop.index }}/{{ t.function.name }}({{ t.function.arguments | tojson }}){% endfor %}{{ loop.index }};{% endfor %}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "1;2;1/f({\"b\": 1, \"a\": \"x\"})3;4;"),
        ("{% set ns = namespace(s='', n=0) %}{% for m in messages %}{% set ns.s = ns.s ~ m.role[0] %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.s }}{{ ns.n }}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "suat4"),
        ("{% macro render(m, prefix='> ') %}{{ prefix }}{{ m.role | upper }}{% endmacro %}{% for m in messages %}{{ render(m) }}{{ render(m, prefix='#') }}{% endfor %}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "> SYSTEM#SYSTEM> USER#USER> ASSISTANT#ASSISTANT> TOOL#TOOL"),
        ("{%- if tools is not defined or tools is none %}none{%- else %}{{ tools | length }}{%- endif %}|{{ '\\n'.join(['a', 'b']) }}|{{ 'a\\nb\\n'.split('\\n') }}|{{ 'x'.join('abc') }}",
         "{\"tools\": null}",
         "none|a\nb|['a', 'b', '']|axbxc"),
        ("{% set c = messages[2].content %}{{ c.split('</think>')[0].strip() }}|{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ ('</think>' in c) and not ('<tool>' in c) }}|{{ c[:7] }}|{{ c[-6:] }}|{{ c[10:2:-2] }}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "<think>\nplan|Answer|True|<think>|Answer|ap>n"),
        ("{{ -7 // 2 }} {{ 7 // -2 }} {{ -7 % -3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -1 }} {{ 10 / 5 }} {{ 1 - 0.1 }} {{ 0.1 + 0.2 }}",
         "{}",
         "-4 -4 -1 3.0 0.5 0.5 2.0 0.9 0.30000000000000004"),
        ("{{ 'abc' < 'abd' }} {{ 'B' < 'a' }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ none == none }} {{ 'a' != 'a' }} {{ 1 in [1.0] }}",
         "{}",
         "True True True True True False True"),
        ("{% for x in [3, 1, 2] %}{% for y in 'ab' %}{{ loop.index }}{{ y }}{% endfor %}{{ loop.index }}.{% endfor %}",
         "{}",
         "1a2b1.1a2b2.1a2b3."),
        ("{% if messages | length > 2 and messages[-1].role == 'tool' %}tool-last{% endif %}{% for m in messages[1:-1] %}{{ m.role }}{% endfor %}{% for m in messages | reverse %}{{ loop.index0 }}{% endfor %}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "tool-lastuserassistant0123"),
        ("{{ messages[0].get('content') }}|{{ messages[0].get('missing', 'd') }}|{{ messages[0].missing is defined }}|{{ messages[0]['missing'] | default('x') }}|{{ messages[5] is defined }}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "Sys é|d|False|x|False"),
        ("{% for k, v in messages[2].tool_calls[0].function.arguments | items %}{{ k }}={{ v | tojson }}{{ ', ' if not loop.last }}{% endfor %}|{% for k in messages[2].tool_calls[0].function.arguments.keys() %}{{ k }}{% endfor %}",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "b=1, a=\"x\"|ba"),
        ("{{ 'Hello World'.lower().replace('world', 'x').upper() }}|{{ '  a  '.rstrip() }}|{{ 'a-b_c'.title() }}|{{ 'ab'.startswith('') }}|{{ ''.split() }}|{{ 'a  b'.split(' ') }}",
         "{}",
         "HELLO X|  a|A-B_C|True|[]|['a', '', 'b']"),
        ("{%- for m in messages -%}\n  {%- if m.role == 'user' -%}\n    [U]\n  {%- elif m.role == 'assistant' -%}\n    [A]\n  {%- else -%}\n    [{{ m.role }}]\n  {%- endif -%}\n{%- endfor -%}\n",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "[system][U][A][tool]"),
        ("{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n  {# c #}\n    {% if true %}  x  {% endif %}\n\n{{- ' y ' -}}\n\nz",
         "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys é\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" there\"}]}, {\"role\": \"assistant\", \"content\": \"<think>\\nplan\\n</think>\\n\\nAnswer\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": \"x\"}}}]}, {\"role\": \"tool\", \"content\": \"42\"}]}",
         "  system\n  user\n  assistant\n  tool\n  x   y z"),
        ("{% set a = [1, 2, 3] %}{{ a | first }}{{ a | last }}{{ a | length }}{{ a[1:] | list }}{{ a | join }}{{ a | sum if false else 0 }}{{ (a | list)[0] }}",
         "{}",
         "133[2, 3]12301"),
        ("{{ x | string | length }}|{{ x ~ '' }}|{{ x | tojson }}|{{ y | tojson }}|{{ y }}",
         "{\"x\": 12.5, \"y\": [true, null, 1e+100, -0.0]}",
         "4|12.5|12.5|[true, null, 1e+100, -0.0]|[True, None, 1e+100, -0.0]"),
        ("{% set d = {'b': 2, 'a': 1} %}{{ d }}|{{ d | tojson }}|{{ d | items | list }}|{{ d.values() | list }}|{{ d | length }}|{{ 'a' in d }}",
         "{}",
         "{'b': 2, 'a': 1}|{\"b\": 2, \"a\": 1}|[('b', 2), ('a', 1)]|[2, 1]|2|True"),
        ("{{ raise_exception is defined }}{{ strftime_now is defined }}{{ namespace is defined }}{{ range(3) | list }}{{ range(1, 7, 2) | list }}{{ dict(a=1) }}",
         "{}",
         "TrueTrueTrue[0, 1, 2][1, 3, 5]{'a': 1}"),
        ("{{ x | tojson(ensure_ascii=true) }}|{{ x | tojson(sort_keys=true) }}|{{ x | tojson(separators=(\",\", \":\")) }}|{{ x | tojson(indent=\"\t\") }}|{{ [1, [2, {}]] | tojson(indent=0) }}",
         "{\"x\": {\"z\": \"é😀\\u0001\", \"a\": [1, 2.5e-07]}}",
         "{\"z\": \"\\u00e9\\ud83d\\ude00\\u0001\", \"a\": [1, 2.5e-07]}|{\"a\": [1, 2.5e-07], \"z\": \"é😀\\u0001\"}|{\"z\":\"é😀\\u0001\",\"a\":[1,2.5e-07]}|{\n\t\"z\": \"é😀\\u0001\",\n\t\"a\": [\n\t\t1,\n\t\t2.5e-07\n\t]\n}|[\n1,\n[\n2,\n{}\n]\n]"),
        ("{{ (1,) }}|{{ () }}|{{ (1, 'a') + (2,) }}|{{ (1, 2) == [1, 2] }}|{{ (1, 2)[1:] }}|{{ 'ab'.startswith(('x', 'a')) }}|{% for a, b in {'k': 1}.items() %}{{ a }}{{ b }}{% endfor %}|{% set t = 1, 2 %}{{ t }}",
         "{}",
         "(1,)|()|(1, 'a', 2)|False|(2,)|True|k1|(1, 2)"),
    ]

    @Test func rendersAsJinja2() throws {
        for (source, variables, expected) in Self.cases {
            guard case .dict(let vars) = try JSON.parse(Data(variables.utf8), source: "variables") else {
                Issue.record("variables must be an object")
                continue
            }
            let text = try ChatTemplate(source, name: "case").render(Dictionary(uniqueKeysWithValues: vars.pairs))
            #expect(text == expected, "\(source.debugDescription)")
        }
    }

    /// The error a template gets, as text.
    func failure(_ source: String, _ variables: [String: Value] = [:]) -> String {
        do {
            _ = try ChatTemplate(source, name: "t.jinja").render(variables)
            return "rendered"
        } catch {
            return "\(error)"
        }
    }

    @Test func unsupportedConstructsNameTemplateAndPosition() {
        #expect(failure("ab\n  {% include 'x' %}") == "chat template t.jinja:2:6: unsupported statement '{% include %}'")
        #expect(failure("{{ x | wordwrap }}") == "chat template t.jinja:1:6: unsupported filter 'wordwrap'")
        #expect(failure("{{ x is prime }}") == "chat template t.jinja:1:6: unsupported test 'prime'")
        #expect(failure("{{ 'a %s' % 1 }}").hasPrefix("chat template t.jinja:1:11: printf-style"))
        #expect(failure("{% for x in y recursive %}{% endfor %}").contains("recursive loops are not supported"))
    }

    @Test func malformedTemplatesAreSyntaxErrors() {
        #expect(failure("{% if x %}a") == "chat template t.jinja:1:12: missing '{% endif %}'")
        #expect(failure("{{ 'a' ") == "chat template t.jinja:1:1: unclosed tag: missing '}}'")
        #expect(failure("x {# y") == "chat template t.jinja:1:3: unclosed comment: missing '#}'")
        #expect(failure("{% endfor %}") == "chat template t.jinja:1:4: unexpected '{% endfor %}' with no open block")
        #expect(failure("{{ 1 + }}") == "chat template t.jinja:1:8: unexpected '}}' in an expression")
    }

    @Test func runtimeErrorsFollowJinja2() {
        // jinja2's default Undefined: printing is '', arithmetic and attribute access fail.
        #expect(failure("{{ nope + 1 }}") == "chat template t.jinja:1:9: 'nope' is undefined")
        #expect(failure("{{ nope.attr }}") == "chat template t.jinja:1:8: 'nope' is undefined")
        #expect(failure("{{ d.foo + 1 }}", ["d": .dict(OrderedDict())]) == "chat template t.jinja:1:10: 'dict object' has no attribute 'foo'")
        #expect(failure("{{ 'a' + 1 }}") == "chat template t.jinja:1:8: unsupported operand type(s) for +: 'str' and 'int'")
        #expect(failure("{{ raise_exception('Only user roles') }}") == "Only user roles")
    }

    @Test func strftimeNowUsesPythonDirectives() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let now = try #require(calendar.date(from: DateComponents(year: 2025, month: 3, day: 5, hour: 14, minute: 7, second: 9)))
        let t = try ChatTemplate("{{ strftime_now('%d %b %Y|%A %B %-d|%H:%M:%S %p|%y-%m-%j|%%') }}", name: "t")
        #expect(try t.render([:], now: now) == "05 Mar 2025|Wednesday March 5|14:07:09 PM|25-03-064|%")
    }
}
