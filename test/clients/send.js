// One message through subproxy with nodemailer (the Node.js mail library), as a Node app
// would send it.  Driven by test/integration/test_real_clients.py:
//   node send.js PORT MECH SUBJECT CA_FILE USER PASSWORD
// Exit 0 when the proxy accepted the message; the SMTP transcript goes to stderr (debug).
'use strict';
const fs = require('fs');
const nodemailer = require('nodemailer');

const [port, mech, subject, caFile, user, pass] = process.argv.slice(2);
const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: Number(port),
    secure: false,          // plain connect, then STARTTLS ...
    requireTLS: true,       // ... and refuse to go on without it
    authMethod: mech,       // PLAIN or LOGIN
    auth: { user, pass },
    tls: { ca: [fs.readFileSync(caFile)], servername: 'proxy.test', rejectUnauthorized: true },
    connectionTimeout: 10000,
    greetingTimeout: 10000,
    socketTimeout: 10000,
    logger: true,           // transcript (client and server lines) on stderr
    debug: true,
});
// The logger writes to stdout; keep stdout for the result only.
console.info = console.error;
transport.sendMail({
    from: 'alice@example.com',
    to: 'bob@example.com',
    subject,
    text: 'Sent by nodemailer through subproxy.\n',
}).then((info) => {
    process.stdout.write(info.response + '\n');
}, (err) => {
    process.stderr.write('nodemailer failed: ' + err.message + '\n');
    process.exitCode = 1;
});
