<?php
// One message through subproxy with PHPMailer (Debian's libphp-phpmailer), as a PHP web
// application sends it.  Driven by test/integration/test_real_clients.py:
//   php send.php PORT MECH SUBJECT CA_FILE USER PASSWORD
// Exit 0 when the proxy accepted the message; the SMTP transcript goes to stderr.
require '/usr/share/php/libphp-phpmailer/autoload.php';

use PHPMailer\PHPMailer\PHPMailer;
use PHPMailer\PHPMailer\SMTP;

[, $port, $mech, $subject, $ca, $user, $pass] = $argv;
$mail = new PHPMailer(true);
$mail->isSMTP();
$mail->Host = '127.0.0.1';
$mail->Port = (int) $port;
$mail->SMTPSecure = PHPMailer::ENCRYPTION_STARTTLS;
$mail->SMTPAutoTLS = false;          // STARTTLS because we ask for it, not by guess
$mail->SMTPAuth = true;
$mail->AuthType = $mech;             // PLAIN or LOGIN
$mail->Username = $user;
$mail->Password = $pass;
$mail->Timeout = 10;
// Verify the chain against the test CA and the name proxy.test (not the address dialled).
$mail->SMTPOptions = ['ssl' => ['cafile' => $ca, 'peer_name' => 'proxy.test',
                                'verify_peer' => true, 'verify_peer_name' => true,
                                'allow_self_signed' => false]];
$mail->SMTPDebug = SMTP::DEBUG_SERVER;   // client and server lines
$mail->Debugoutput = function ($line, $level) {
    fwrite(STDERR, rtrim($line) . "\n");
};
$mail->setFrom('alice@example.com');
$mail->addAddress('bob@example.com');
$mail->Subject = $subject;
$mail->Body = "Sent by PHPMailer through subproxy.\n";
try {
    $mail->send();
} catch (Exception $e) {
    fwrite(STDERR, 'PHPMailer failed: ' . $mail->ErrorInfo . "\n");
    exit(1);
}
echo "sent\n";
