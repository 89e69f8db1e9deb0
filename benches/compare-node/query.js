// Node seaport's in-process query time: the npm package's own `query()` on a registry
// of N records, the same data set as benches/src/bin/query_bench.rs.
//
// usage: node query.js SEAPORT_MODULE_DIR [N...]   (default 1000 10000 100000)
// prints: query records=N kind=role|range matches=M ns_per_query=T
// (the range is `>=1.2.0 <2.0.0`: the package's semver 1.1 has no `^`)
'use strict';
var seaport = require(process.argv[2]);

var PER_ROLE = 100, HOSTS = 8;
var sizes = process.argv.slice(3).map(Number);
if (sizes.length === 0) sizes = [1000, 10000, 100000];

sizes.forEach(function (n) {
    var roles = Math.max(1, Math.floor(n / PER_ROLE));
    var s = seaport();
    for (var i = 0; i < n; i++) {
        var k = Math.floor(i / roles);
        var id = i.toString(16).padStart(16, '0');
        // What a hub-connected node client holds for a record it learned.
        s.known[id] = {
            id: id,
            role: 'role-' + (i % roles),
            version: (1 + Math.floor(k / 10) % 2) + '.' + (k % 10) + '.' + (k % 7),
            host: '10.0.0.' + (i % HOSTS + 1),
            port: 10000 + Math.floor(i / HOSTS),
            zone: ['a', 'b', 'c'][i % 3],
        };
    }
    [['role', 'role-7'], ['range', 'role-7@>=1.2.0 <2.0.0']].forEach(function (q) {
        var kind = q[0], pattern = q[1];
        var matches = s.query(pattern).length;
        var runs = 0, start = process.hrtime.bigint(), elapsed = 0n;
        while (elapsed < 500000000n || runs < 10) {
            s.query(pattern);
            runs++;
            elapsed = process.hrtime.bigint() - start;
        }
        console.log('query records=' + n + ' kind=' + kind + ' matches=' + matches +
            ' ns_per_query=' + (elapsed / BigInt(runs)));
    });
});
