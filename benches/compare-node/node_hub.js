// A node seaport hub (`seaport.createServer()`) on 127.0.0.1:PORT (0 picks one).
//
// usage: node node_hub.js SEAPORT_MODULE_DIR PORT
// prints `seaport listening on 127.0.0.1:PORT` once listening, as `seaport listen` does.
'use strict';
var seaport = require(process.argv[2]);

var server = seaport.createServer();
server.listen(Number(process.argv[3] || 0), '127.0.0.1', function () {
    console.log('seaport listening on 127.0.0.1:' + server.address().port);
});
