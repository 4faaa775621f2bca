Feature: A poison message lands in the dead letters while the valid messages around it are processed
  As the hotline and the supervision team of a managed-services company
  We want a message the engine cannot read to be set aside, with why and with its original bytes
  So that one broken message never holds up the incidents the restaurants report, and its sender can fix and replay it

  The customer extranet publishes the incidents the restaurant managers of "resto-chain" open on
  partition 0 of "itil.intake.requests"; the monitoring server "centreon" publishes its alarms on
  "itil.intake.alerts". The engine reads them in batches. Times are Paris local time on Monday 1 June 2026.

  Scenario: A message cut off in the middle does not stop the incidents before and after it
    Given the extranet publishes at 09:00 the incident "Payment terminal offline" of "j.martin@resto-chain.fr" on "tpe-0042"
    And the extranet publishes a message cut off after '{"type": "incident.open", "message_id":'
    And the extranet publishes at 09:01 the incident "Receipt printer jammed" of "p.durand@resto-chain.fr" on "tpe-0107"
    When the engine reads these 3 messages from offset 40 in one batch
    Then the messages "Payment terminal offline" and "Receipt printer jammed" are processed
    And "resto-chain" has the incidents "Payment terminal offline" and "Receipt printer jammed", logged through the extranet
    And the cut-off message is dead-lettered with a reason starting "malformed JSON"
    And its dead letter keeps its original bytes and says it came from "itil.intake.requests", partition 0, offset 41
    When the extranet publishes at 09:05 the incident "Card reader refuses contactless" of "j.martin@resto-chain.fr" on "tpe-0042"
    And the engine reads this message from offset 43 in one batch
    Then the message "Card reader refuses contactless" is processed
    And "resto-chain" has 3 incidents logged through the extranet

  Scenario: A message in a schema version the engine does not know is set aside
    Given the extranet publishes at 09:00 the incident "Payment terminal offline" of "j.martin@resto-chain.fr" on "tpe-0042" in schema version 2
    And the extranet publishes at 09:01 the incident "Receipt printer jammed" of "p.durand@resto-chain.fr" on "tpe-0107"
    When the engine reads these 2 messages from offset 40 in one batch
    Then the message "Payment terminal offline" is dead-lettered with the reason "incident.open schema version 2 is not supported: supported versions are 1"
    And its dead letter names its type "incident.open", its schema version 2 and its message id
    And its dead letter keeps its original bytes and says it came from "itil.intake.requests", partition 0, offset 40
    And the message "Receipt printer jammed" is processed
    And "resto-chain" has 1 incident logged through the extranet

  Scenario: An extranet message that does not say who reports the incident is set aside
    Given the extranet publishes at 09:00 the incident "Payment terminal offline" of "j.martin@resto-chain.fr" on "tpe-0042" without its "requester"
    And the extranet publishes at 09:01 the incident "Receipt printer jammed" of "p.durand@resto-chain.fr" on "tpe-0107"
    When the engine reads these 2 messages from offset 40 in one batch
    Then the message "Payment terminal offline" is dead-lettered with the reason "incident.open v1 does not follow its contract: requester: Missing data for required field"
    And its dead letter names its type "incident.open", its schema version 1 and its message id
    And the message "Receipt printer jammed" is processed
    And "resto-chain" has 1 incident logged through the extranet

  Scenario: An alarm that does not say how severe it is is set aside
    Given "centreon" raises at 09:00 the alarm "ping" on "router-marseille-01" of "resto-chain" without its "severity"
    When the engine reads this message from offset 7 in one batch
    Then the alarm "ping" on "router-marseille-01" is dead-lettered with the reason "alarm.raised v1 does not follow its contract: severity: Missing data for required field"
    And its dead letter names its type "alarm.raised", its schema version 1 and its message id
    And its dead letter keeps its original bytes and says it came from "itil.intake.alerts", partition 0, offset 7
