#!/usr/bin/perl
# Drive Net::Stomp through a list of steps given as JSON on stdin, each a call of the
# library's own API, and print the MESSAGE frames received as a JSON array:
#
#   {"host": "127.0.0.1", "port": 61613, "connect": {"client-id": "x"},
#    "steps": [["subscribe", {"destination": "/topic/t", "ack": "client"}],
#              ["send", {"destination": "/queue/q", "body": "b"}],
#              ["send_with_receipt", {...}], ["send_transactional", {...}],
#              ["frame", "BEGIN", {"transaction": "t1", "receipt": "r"}],
#              ["receive", {"count": 2, "timeout": 10, "quiet": 1}],
#              ["ack", 0, {"transaction": "t1"}], ["disconnect"]]}
#
# A header "receipt" on (un)subscribe, ack or frame waits for that RECEIPT (Net::Stomp leaves it
# to the caller). Any failure dies with a message: exit status 2 or more.
use strict;
use warnings;
use JSON::PP;
use Net::Stomp;
use Net::Stomp::Frame;

my $json = JSON::PP->new->canonical;
my $plan = $json->decode(do { local $/; <STDIN> });
my $stomp = Net::Stomp->new({ hostname => $plan->{host}, port => $plan->{port} })
    or die "cannot connect to $plan->{host}:$plan->{port}\n";
my $connected = $stomp->connect($plan->{connect} // {});
die "CONNECT refused: " . ($connected ? $connected->as_string : 'no answer') . "\n"
    unless $connected && $connected->command eq 'CONNECTED';

my (@stash, @messages);    # frames read while waiting for a receipt; MESSAGEs returned

sub next_frame {
    my ($timeout) = @_;
    return shift @stash if @stash;
    return $stomp->receive_frame({ timeout => $timeout });
}

sub wait_receipt {
    my ($id) = @_;
    while (my $frame = $stomp->receive_frame({ timeout => 10 })) {
        die "ERROR frame: " . $frame->as_string . "\n" if $frame->command eq 'ERROR';
        return if $frame->command eq 'RECEIPT' && $frame->headers->{'receipt-id'} eq $id;
        push @stash, $frame;
    }
    die "no RECEIPT $id within 10 s\n";
}

sub receive {
    my ($want) = @_;
    my @got;
    while (@got < $want->{count}) {
        my $frame = next_frame($want->{timeout}) or die sprintf(
            "got %d of %d messages within %s s\n", scalar @got, $want->{count}, $want->{timeout});
        die "ERROR frame: " . $frame->as_string . "\n" if $frame->command eq 'ERROR';
        push @got, $frame if $frame->command eq 'MESSAGE';
    }
    # Then whatever else arrives within "quiet" seconds: a test shows nothing more does.
    while ($want->{quiet} && (my $frame = next_frame($want->{quiet}))) {
        push @got, $frame if $frame->command eq 'MESSAGE';
    }
    push @messages, @got;
}

for my $step (@{ $plan->{steps} }) {
    my ($action, @args) = @$step;
    if ($action eq 'subscribe' || $action eq 'unsubscribe') {
        $stomp->$action($args[0]);
        wait_receipt($args[0]{receipt}) if $args[0]{receipt};
    } elsif ($action eq 'send') {
        $stomp->send($args[0]);
    } elsif ($action eq 'send_with_receipt') {
        $stomp->send_with_receipt($args[0]) or die "no receipt for a SEND\n";
    } elsif ($action eq 'send_transactional') {
        $stomp->send_transactional($args[0]) or die "no receipt for a transactional SEND\n";
    } elsif ($action eq 'frame') {
        my ($command, $headers) = @args;
        $stomp->send_frame(Net::Stomp::Frame->new({ command => $command, headers => $headers }));
        wait_receipt($headers->{receipt}) if $headers->{receipt};
    } elsif ($action eq 'receive') {
        receive($args[0]);
    } elsif ($action eq 'ack') {
        my ($index, $headers) = @args;
        $stomp->ack({ frame => $messages[$index], %{ $headers // {} } });
        wait_receipt($headers->{receipt}) if $headers && $headers->{receipt};
    } elsif ($action eq 'disconnect') {
        $stomp->disconnect;
    } else {
        die "unknown step $action\n";
    }
}
print $json->encode([map { { headers => $_->headers, body => $_->body } } @messages]), "\n";
