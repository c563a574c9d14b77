// The customer-side engine, the message: the DATA body through the scanner to the MSA, our
// refusal at its end when the scanner stopped it, the MSA's verdict after ".", and what
// happens when the MSA fails.  See
// client_protocol.h.
#include "engine/client_protocol.h"
#include "wire/text_util.h"

namespace subproxy {

void ClientProtocol::feedData() {
    std::string in = reader_.takeBuffered();
    std::string out;
    const auto result = scanner_->feed(in, out);
    if (!dataAborted_ && !scanner_->clean()) {
        // Stop the MSA's copy now: closing without the terminator makes it discard the
        // partial message.  The customer gets its answer at the real end of data.
        dataAborted_ = true;
        if (upstreamUp_) {
            host_.upstreamAbort();
            upstreamUp_ = false;
        }
    }
    if (!out.empty() && !dataAborted_ && upstreamUp_) {
        host_.upstreamSend(out);
    }
    if (result.consumed < in.size()) {
        reader_.append(std::string_view(in).substr(result.consumed));
    }
    if (result.done) {
        finishData();
    }
}

void ClientProtocol::finishData() {
    lastMessageSize_ = scanner_->size();
    const DataScanner scanner = *scanner_;
    scanner_.reset();
    setState(State::Command);
    if (!dataAborted_) {
        relay(PendingKind::DataEnd, ".");
        return;
    }
    ++counters_.rejected;
    count([](Metrics& m) { ++m.messagesRejected; });
    std::string why;
    if (scanner.tooBig()) {
        why = "message too big";
        reply(552, "5.3.4 Error: message size exceeds fixed limit");
    } else if (scanner.sawNul()) {
        why = "NUL in message body";
        reply(554, "5.6.0 Error: NUL character in message body; the message was not sent");
    } else if (scanner.sawBareNewline()) {
        why = "bare <CR> or <LF> in message body";
        reply(550, "5.5.2 Error: bare <CR> or <LF> in message body; the message was not sent");
    } else {
        why = "connection to the MSA lost during DATA";
        reply(451, "4.4.2 Error: connection to the mail server lost; the message was not sent, try again");
    }
    host_.logWarning("message from=<" + printable(mailFrom_, 256) + "> refused: " + why +
                     ", size=" + std::to_string(lastMessageSize_));
    endTransaction();
    if (why.rfind("connection", 0) == 0 || !canReopenUpstream()) {
        reply(421, "4.4.2 " + config_.hostname + " Error: closing connection");
        close(why);
        return;
    }
    // The MSA session was dropped to abort the body (SMTP has no other way to stop a DATA
    // without the terminator); a new one, with the same identity, serves what comes next.
    reopening_ = true;
    openUpstream();
}

void ClientProtocol::messageVerdict(const Reply& msaReply) {
    const bool sent = msaReply.klass() == 2;
    sent ? ++counters_.messages : ++counters_.rejected;
    count([&](Metrics& m) {
        sent ? ++m.messagesRelayed : ++m.messagesRejected;
        m.bytesRelayed += sent ? lastMessageSize_ : 0;
    });
    if (sent) {
        host_.messageAccepted(user_);
    }
    if (accountTransactionHeld_) {
        accountTransactionHeld_ = false;
        host_.accountSettle(user_, SendingKind::Message, sent);  // the final 250 counts the message
    }
    // Our own fields before the customer's text (the sender may hold spaces and "x=y"), so that
    // one grep answers "who still sends through port 25", and queue_id= joins the line to the
    // MSA's log.
    const std::string queueId = sent ? queueIdOf(msaReply) : std::string();
    host_.logInfo("message sasl_username=" + printable(user_) + " dialled_port=" +
                  std::to_string(endpoint_.destPort) + " status=" + (sent ? "sent" : "rejected") +
                  (queueId.empty() ? std::string() : " queue_id=" + queueId) + " from=<" +
                  printable(mailFrom_, 256) + "> nrcpt=" + std::to_string(rcptAccepted_) +
                  " size=" + std::to_string(lastMessageSize_) + " reply=\"" + printable(msaReply.text(), 200) +
                  "\"");
    endTransaction();
    if (clientGone_ || shutdownRequested_) {
        if (shutdownRequested_) {
            reply(421, "4.3.2 " + config_.hostname + " Service shutting down, try again later");
        }
        close(clientGone_ ? "client disconnected" : "shutdown");
    }
}

void ClientProtocol::onUpstreamFailed(UpstreamFailure kind, const std::string& detail) {
    if (state_ == State::Closed) {
        return;
    }
    count([&](Metrics& m) { m.upstreamError(kUpstreamErrorKinds[static_cast<std::size_t>(kind)]); });
    const bool wasUp = upstreamUp_;
    upstreamUp_ = false;
    host_.logWarning("MSA session failed: " + printable(detail, 200));
    if (state_ == State::UpstreamOpening) {
        if (reopening_) {
            reply(421, "4.4.1 " + config_.hostname + " Error: mail server unavailable, try again later");
            close("MSA unavailable");
            return;
        }
        authFailed(454, "4.7.0 Temporary authentication failure: mail server unavailable, try again later",
                   false);
        return;
    }
    if (state_ == State::DataBody) {
        // The customer is still sending; answer at its end of data (it reads no replies now).
        dataAborted_ = true;
        return;
    }
    if (!pending_.empty() && pending_.front().kind == PendingKind::DataEnd) {
        // After "." a lost or silent MSA may or may not have queued the message: 4xx makes the
        // customer retry, and a duplicate is better than a loss (checklist #10).
        host_.logWarning("message from=<" + printable(mailFrom_, 256) +
                         "> status=deferred: MSA gave no reply after end of data");
        reply(451, "4.4.2 Error: no reply from the mail server after end of data; try again later");
    }
    (void)wasUp;
    reply(421, "4.4.2 " + config_.hostname + " Error: lost connection to the mail server, try again later");
    accountReleaseAll();
    pending_.clear();
    heldReplyBytes_ = 0;
    close("MSA connection lost");
}

}  // namespace subproxy
