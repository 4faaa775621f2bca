Feature: Major incidents
  As the ROC of a restaurant chain
  I want to be informed as soon as an incident on my account is declared major
  So that I call the customer before the customer calls us

  Scenario: Declaring a major incident informs the account's ROC
    Given the restaurant chain "resto-chain", whose ROC is "roc-anne"
    And "supervision" logged the incident "Payment platform unreachable from every restaurant" on "payment-gateway" of "resto-chain", impact 1 and urgency 1, on Monday 1 June 2026 at 12:00
    When "N2 network" declares "Payment platform unreachable from every restaurant" a major incident because "600 restaurants cannot take card payments" on Monday 1 June 2026 at 12:05
    Then "roc-anne" is informed of the major incident "Payment platform unreachable from every restaurant" because "major incident declared: 600 restaurants cannot take card payments"
    When the whole event history is delivered again to the engine's processes
    Then "roc-anne" was informed of "Payment platform unreachable from every restaurant" only once
    And nothing more is recorded

  Scenario: An account without a ROC: the declaration stands and the engine carries on
    Given the hotel chain "hotel-chain", which has no ROC yet
    And "supervision" logged the incident "Hotel booking terminals offline" on "payment-gateway" of "hotel-chain", impact 1 and urgency 1, on Monday 1 June 2026 at 12:00
    When "N2 network" declares "Hotel booking terminals offline" a major incident because "no hotel can check guests in" on Monday 1 June 2026 at 12:05
    Then "Hotel booking terminals offline" is a major incident
    And nobody was informed for "hotel-chain"
    And the engine logged that it could not inform the ROC of "hotel-chain" because "the account has no ROC"
    And the engine's processes have handled every event
