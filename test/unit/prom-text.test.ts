// The strict Prometheus text-format parser the /metrics tests rely on (test/helpers/prom-text.ts):
// it must read the format's own examples and refuse what the format forbids, or the
// integration test that "parses" the broker's exposition proves nothing.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parsePromText, sampleValue, histogramOf, PromParseError } from '../helpers/prom-text';

const GOOD = [
  '# A plain comment',
  '# HELP http_requests_total The total number of HTTP requests.',
  '# TYPE http_requests_total counter',
  'http_requests_total{method="post",code="200"} 1027 1395066363000',
  'http_requests_total{method="post",code="400"}    3 1395066363000',
  '',
  'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
  'metric_without_timestamp_and_labels 12.47',
  'something_weird{problem="division by zero"} +Inf -3982045',
  '# HELP escaped_help A \\\\ backslash and a\\nline feed.',
  '# TYPE escaped_help gauge',
  'escaped_help{trailing="comma",} NaN',
  '# TYPE rpc_duration_seconds summary',
  'rpc_duration_seconds{quantile="0.5"} 4773',
  'rpc_duration_seconds_sum 1.7560473e+07',
  'rpc_duration_seconds_count 2693',
  '',
].join('\n');

test('reads the format\'s examples: labels, escapes, timestamps, NaN / Inf, summaries', () => {
  const f = parsePromText(GOOD);
  assert.equal(f.get('http_requests_total')!.type, 'counter');
  assert.equal(f.get('http_requests_total')!.help, 'The total number of HTTP requests.');
  assert.equal(sampleValue(f, 'http_requests_total', { code: '400' }), 3);
  assert.equal(f.get('http_requests_total')!.samples[0].timestamp, 1395066363000);
  const msdos = f.get('msdos_file_access_time_seconds')!.samples[0];
  assert.equal(msdos.labels.path, 'C:\\DIR\\FILE.TXT');
  assert.equal(msdos.labels.error, 'Cannot find file:\n"FILE.TXT"');
  assert.equal(f.get('msdos_file_access_time_seconds')!.type, 'untyped');
  assert.equal(sampleValue(f, 'something_weird'), Infinity);
  assert.equal(f.get('escaped_help')!.help, 'A \\ backslash and a\nline feed.');
  assert.ok(Number.isNaN(sampleValue(f, 'escaped_help')));
  assert.equal(f.get('rpc_duration_seconds')!.samples.length, 3);
  assert.equal(f.has('rpc_duration_seconds_sum'), false);
});

const BAD: Array<[string, string]> = [
  ['no final line feed', 'a 1'],
  ['unknown type', '# TYPE a countr\na 1\n'],
  ['TYPE after samples', 'a 1\n# TYPE a gauge\n'],
  ['two TYPE lines', '# TYPE a gauge\n# TYPE a gauge\na 1\n'],
  ['two HELP lines', '# HELP a x\n# HELP a y\na 1\n'],
  ['interleaved families', 'a{x="1"} 1\nb 2\na{x="2"} 3\n'],
  ['duplicate series', 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n'],
  ['a bad escape in a label value', 'a{x="\\t"} 1\n'],
  ['a bad escape in HELP', '# HELP a tab\\there\na 1\n'],
  ['an unquoted label value', 'a{x=1} 1\n'],
  ['a reserved label name', 'a{__name__="b"} 1\n'],
  ['a label twice', 'a{x="1",x="2"} 1\n'],
  ['a value that is no float', 'a 0x10\n'],
  ['a missing value', 'a{x="1"}\n'],
  ['a fractional timestamp', 'a 1 1.5\n'],
  ['a third token', 'a 1 2 3\n'],
  ['an invalid metric name', '1a 1\n'],
  ['no space before the value', 'a{x="1"}1\n'],
  ['a histogram bucket without le', '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n'],
  ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ['a histogram whose buckets are not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
  ['a histogram whose le goes down', '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
  ['a histogram whose _count is not the +Inf bucket', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'],
  ['a histogram without _sum', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\n'],
  ['a bare sample in a histogram', '# TYPE h histogram\nh 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
];

test('reads the format\'s histogram example: cumulative buckets, +Inf, _sum, _count', () => {
  const f = parsePromText([
    '# HELP http_request_duration_seconds A histogram of the request duration.',
    '# TYPE http_request_duration_seconds histogram',
    'http_request_duration_seconds_bucket{le="0.05"} 24054',
    'http_request_duration_seconds_bucket{le="0.1"} 33444',
    'http_request_duration_seconds_bucket{le="0.2"} 100392',
    'http_request_duration_seconds_bucket{le="0.5"} 129389',
    'http_request_duration_seconds_bucket{le="1"} 133988',
    'http_request_duration_seconds_bucket{le="+Inf"} 144320',
    'http_request_duration_seconds_sum 53423',
    'http_request_duration_seconds_count 144320',
    '',
  ].join('\n'));
  const h = histogramOf(f, 'http_request_duration_seconds');
  assert.equal(h.count, 144320);
  assert.equal(h.sum, 53423);
  assert.deepEqual(h.buckets[0], [0.05, 24054]);
  assert.deepEqual(h.buckets[h.buckets.length - 1], [Infinity, 144320]);
});

for (const [what, text] of BAD) {
  test(`refuses ${what}`, () => {
    assert.throws(() => parsePromText(text), PromParseError);
  });
}
