Feature: A restaurant manager opens an incident from the extranet, comments on it and confirms its resolution
  As the manager of a restaurant of the chain "resto-chain"
  I want to report a failing payment terminal on the customer extranet, tell the hotline what I see, and say whether its repair holds
  So that the hotline works on it straight away and nothing is closed before my restaurant takes card payments again

  The extranet publishes what a manager does as messages on "itil.intake.requests"; the engine carries
  out each message once, however many times it is delivered. "j.martin@resto-chain.fr" manages the
  Aubagne restaurant of "resto-chain", whose payment terminal (TPE) is "tpe-0042". Another customer,
  "burger-co", calls the hotline about its own sites. Times are Paris local time on Monday 1 June 2026.

  Scenario: The manager's report becomes one incident on the account, however often it is delivered
    When "j.martin@resto-chain.fr" of "resto-chain" opens an incident on the extranet at 09:00 on "tpe-0042": "Payment terminal offline", urgency 2
    Then the extranet's message is processed
    And "resto-chain" has the incident "Payment terminal offline" on "tpe-0042", logged through the extranet
    And the incident is new, reported by "j.martin@resto-chain.fr", priority P4
    And its id is the one the extranet's message id determines
    When the extranet delivers the same message again
    Then the extranet's message is skipped as a duplicate
    And "resto-chain" has 1 incident logged through the extranet

  Scenario: The manager confirms the resolution and the incident is closed
    Given "j.martin@resto-chain.fr" of "resto-chain" opened an incident on the extranet at 09:00 on "tpe-0042": "Payment terminal offline"
    And "hotline N1" assigned the incident to "field technicians" at 09:10
    When "field technician" records that service is restored at 10:30 with the note "line replugged, terminal back online"
    And "field technician" resolves the incident with code "fixed" at 11:00
    Then the incident is resolved with code "fixed", service restored at 10:30
    When "j.martin@resto-chain.fr" confirms the resolution on the extranet at 14:00
    Then the extranet's message is processed
    And the incident is closed at 14:00 by "j.martin@resto-chain.fr"

  Scenario: The manager refuses the resolution and the incident is reopened
    Given "j.martin@resto-chain.fr" of "resto-chain" opened an incident on the extranet at 09:00 on "tpe-0042": "Payment terminal offline"
    And "hotline N1" assigned the incident to "field technicians" at 09:10
    And "field technician" recorded that service is restored at 10:30 with the note "line replugged, terminal back online"
    And "field technician" resolved the incident with code "fixed" at 11:00
    When "j.martin@resto-chain.fr" refuses the resolution on the extranet at 15:00: "the terminal went offline again during the lunch rush"
    Then the extranet's message is processed
    And the incident is reopened at 15:00 by "j.martin@resto-chain.fr" because "the terminal went offline again during the lunch rush"
    And the incident is assigned to "field technicians" again, neither restored nor resolved

  Scenario: A manager cannot confirm the resolution of another customer's incident
    Given "hotline N1" logged an incident by phone at 08:00 for "burger-co" on "router-burger-07": "Router down"
    And "N2 technician" resolved the incident with code "fixed" at 09:00
    When "j.martin@resto-chain.fr" of "resto-chain" confirms the resolution of that incident on the extranet at 10:00
    Then the extranet's message is dead-lettered with a reason saying there is no such incident on the account "resto-chain"
    And the dead letter keeps the original message, its type and its id
    And the message is not recorded as processed, so it can be replayed after a fix
    And the incident of "burger-co" is still resolved

  Scenario: The manager comments on the restaurant's incident from the extranet
    Given "j.martin@resto-chain.fr" of "resto-chain" opened an incident on the extranet at 09:00 on "tpe-0042": "Payment terminal offline"
    And "hotline N1" assigned the incident to "field technicians" at 09:10
    When "j.martin@resto-chain.fr" comments on the extranet at 09:30 as "J. Martin": "The terminal restarts every ten minutes since this morning"
    Then the extranet's message is processed
    And the incident has 1 comment
    And its comment at 09:30 by "J. Martin", entered by "j.martin@resto-chain.fr", is visible to the customer: "The terminal restarts every ten minutes since this morning"
    And the incident is still assigned to "field technicians"
    When the extranet delivers the same message again
    Then the extranet's message is skipped as a duplicate
    And the incident has 1 comment

  Scenario: A manager cannot comment on another customer's incident
    Given "hotline N1" logged an incident by phone at 08:00 for "burger-co" on "router-burger-07": "Router down"
    When "j.martin@resto-chain.fr" of "resto-chain" comments on that incident on the extranet at 10:00 as "J. Martin": "Any news?"
    Then the extranet's message is dead-lettered with a reason saying there is no such incident on the account "resto-chain"
    And the message is not recorded as processed, so it can be replayed after a fix
    And the incident has 0 comments
