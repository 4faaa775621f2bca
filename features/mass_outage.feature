Feature: Mass outage of a carrier link
  As the N2 network team of a virtual telecom operator
  We want the incidents of every restaurant behind a failed carrier link attached to the link's incident
  So that restoring the link restores them all, and nobody works forty tickets for one fibre cut

  The restaurants of "resto-chain" around Marseille reach the payment platform through the carrier
  link "link-orange-mrs-12". When it fails, each restaurant calls the N1 hotline.

  Background:
    Given the restaurant chain "resto-chain", whose ROC is "roc-anne"
    And "supervision" logged the incident "Carrier link ORANGE-MRS-12 down" on "link-orange-mrs-12" of "resto-chain", impact 1 and urgency 1, on Monday 1 June 2026 at 07:55
    And these restaurants of "resto-chain" called the N1 hotline:
      | incident                                | CI               | logged                      |
      | Restaurant 12 payment terminals offline | router-resto-012 | Monday 1 June 2026 at 08:05 |
      | Restaurant 15 payment terminals offline | router-resto-015 | Monday 1 June 2026 at 08:10 |
      | Restaurant 31 payment terminals offline | router-resto-031 | Monday 1 June 2026 at 08:20 |

  Scenario: Restoring the carrier link restores the restaurants' incidents, resolving it resolves them
    When "N2 network" attaches the restaurants' incidents to "Carrier link ORANGE-MRS-12 down" on Monday 1 June 2026 at 08:40
    Then "Carrier link ORANGE-MRS-12 down" has 3 child incidents
    When "hotline N1" resolves "Restaurant 31 payment terminals offline" with code "workaround" on Monday 1 June 2026 at 09:00
    And "N2 network" puts "Restaurant 15 payment terminals offline" on hold awaiting the supplier on Monday 1 June 2026 at 09:10
    And "N2 network" records that service is restored for "Carrier link ORANGE-MRS-12 down" on Monday 1 June 2026 at 10:40
    Then "Restaurant 12 payment terminals offline" is restored on Monday 1 June 2026 at 10:40, the note naming "Carrier link ORANGE-MRS-12 down"
    And "Restaurant 15 payment terminals offline" is restored on Monday 1 June 2026 at 10:40, the note naming "Carrier link ORANGE-MRS-12 down"
    And "Restaurant 31 payment terminals offline" is resolved with code "workaround"
    When "N2 network" resolves "Carrier link ORANGE-MRS-12 down" with code "third_party" on Monday 1 June 2026 at 11:15
    Then "Restaurant 12 payment terminals offline" is resolved with code "third_party", the notes naming "Carrier link ORANGE-MRS-12 down"
    And "Restaurant 15 payment terminals offline" is resolved with code "third_party", the notes naming "Carrier link ORANGE-MRS-12 down"
    And "Restaurant 31 payment terminals offline" is resolved with code "workaround"
    When the whole event history is delivered again to the engine's processes
    Then nothing more is recorded

  Scenario: A restaurant that calls once the link is back is restored as soon as it is attached
    Given "N2 network" attached the restaurants' incidents to "Carrier link ORANGE-MRS-12 down" on Monday 1 June 2026 at 08:40
    And "N2 network" recorded that service is restored for "Carrier link ORANGE-MRS-12 down" on Monday 1 June 2026 at 10:40
    When "hotline N1" logs the incident "Restaurant 40 cannot take cards" on "router-resto-040" of "resto-chain" on Monday 1 June 2026 at 10:50
    And "hotline N1" attaches "Restaurant 40 cannot take cards" to "Carrier link ORANGE-MRS-12 down" on Monday 1 June 2026 at 11:00
    Then "Restaurant 40 cannot take cards" is restored on Monday 1 June 2026 at 11:00, the note naming "Carrier link ORANGE-MRS-12 down"

  Scenario: A restaurant still down after the link was resolved is reopened by the hotline and left to it
    Given "N2 network" attached the restaurants' incidents to "Carrier link ORANGE-MRS-12 down" on Monday 1 June 2026 at 08:40
    And "N2 network" resolved "Carrier link ORANGE-MRS-12 down" with code "third_party" on Monday 1 June 2026 at 11:15
    When "hotline N1" reopens "Restaurant 12 payment terminals offline" because "terminals still offline, the router needs a reboot" on Monday 1 June 2026 at 12:00
    And the whole event history is delivered again to the engine's processes
    Then "Restaurant 12 payment terminals offline" is still open
    And nothing more is recorded
