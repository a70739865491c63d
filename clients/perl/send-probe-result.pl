#!/usr/bin/perl
# Publish one WLCG probe result over STOMP with Net::Stomp, the way Nagios/SAM probes
# built on perl-Gridmon did, plus msgbus's conventions (messageClass, msgbus-id, a
# receipt) so that msgbus consumers store it and drop it if it is ever sent twice.
#
#   send-probe-result.pl --broker stomp://host:61613 --destination /topic/grid.probe.metricOutput.EGEE.msgbus \
#       --site CERN-PROD --host ce01.cern.ch --metric org.sam.CE-JobSubmit --status OK --summary "job ran"
use strict;
use warnings;
use Getopt::Long;
use Net::Stomp;
use POSIX qw(strftime);
use Sys::Hostname;

my %o = (
    broker      => 'stomp://127.0.0.1:61613',
    destination => '/topic/grid.probe.metricOutput.EGEE.msgbus',
    flavour     => 'CE',
    status      => 'OK',
    summary     => 'probe ran',
    details     => '',
);
GetOptions(\%o, 'broker=s', 'destination=s', 'site=s', 'host=s', 'metric=s', 'flavour=s',
    'status=s', 'summary=s', 'details=s', 'id=s', 'user=s', 'password=s')
    or die "usage: $0 --site S --host H --metric M [--status OK|WARNING|CRITICAL|UNKNOWN]\n";
for my $required (qw(site host metric)) {
    die "missing --$required\n" unless defined $o{$required};
}
my ($hostname, $port) = $o{broker} =~ m{^stomp://([^:/]+):(\d+)$}
    or die "broker must look like stomp://host:port, got $o{broker}\n";

my $now = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
# Field order as MetricOutput.pm writes it; detailsData last because it may span lines.
my $body = join('', map { "$_->[0]: $_->[1]\n" } (
    [serviceURI     => $o{host}],
    [hostName       => $o{host}],
    [serviceFlavour => $o{flavour}],
    [siteName       => $o{site}],
    [metricName     => $o{metric}],
    [metricStatus   => $o{status}],
    [timestamp      => $now],
    [summaryData    => $o{summary}],
));
$body .= "detailsData: $o{details}\n" if length $o{details};
$body .= "EOT\n";

my $id = $o{id} // sprintf('perl-%s-%d-%d', hostname(), $$, time);
my $stomp = Net::Stomp->new({ hostname => $hostname, port => $port })
    or die "cannot connect to $o{broker}\n";
my %login = (defined $o{user} ? (login => $o{user}, passcode => $o{password} // '') : ());
# Net::Stomp speaks STOMP 1.0: offering 1.2 would make the broker expect 1.2 framing.
$stomp->connect({ %login })
    or die "login to $o{broker} refused\n";
my $ok = $stomp->send_with_receipt({
    destination     => $o{destination},
    body            => $body,
    persistent      => 'true',
    'content-type'  => 'text/plain; charset=utf-8',
    messageClass    => 'ProbeResult',
    recordCount     => 1,
    'msgbus-id'     => $id,
});
$stomp->disconnect;
die "no receipt from $o{broker}: the result may not have been stored\n" unless $ok;
print "sent $id\n";
