#!/usr/bin/perl
# One message through subproxy with Net::SMTP (libnet) + Authen::SASL + IO::Socket::SSL, the
# way Perl scripts send mail.  Driven by test/integration/test_real_clients.py:
#   perl send.pl PORT MECH SUBJECT CA_FILE USER PASSWORD
# Exit 0 when the proxy accepted the message; the SMTP transcript goes to stderr (Debug).
use strict;
use warnings;
use Net::SMTP;
use Authen::SASL;

my ($port, $mech, $subject, $ca, $user, $pass) = @ARGV;
my $smtp = Net::SMTP->new('127.0.0.1', Port => $port, Hello => 'perl.example', Timeout => 10, Debug => 1)
    or die "connect: $@\n";
# Verify the chain against the test CA and the name proxy.test (not the address we dialled).
$smtp->starttls(SSL_ca_file => $ca, SSL_verify_mode => 1, SSL_hostname => 'proxy.test',
                SSL_verifycn_name => 'proxy.test', SSL_verifycn_scheme => 'smtp')
    or die "STARTTLS: " . ($smtp->message // '') . " $IO::Socket::SSL::SSL_ERROR\n";
# Authen::SASL restricted to one mechanism, so the test knows which one ran.
my $sasl = Authen::SASL->new(mechanism => $mech, callback => { user => $user, pass => $pass });
$smtp->auth($sasl) or die "AUTH $mech: " . $smtp->code . ' ' . $smtp->message;
$smtp->mail('alice@example.com') or die "MAIL: " . $smtp->message;
$smtp->to('bob@example.com') or die "RCPT: " . $smtp->message;
$smtp->data("From: alice\@example.com\r\nTo: bob\@example.com\r\nSubject: $subject\r\n\r\n"
            . "Sent by Net::SMTP through subproxy.\r\n") or die "DATA: " . $smtp->message;
print $smtp->message;
$smtp->quit;
