Feature: Service levels an account's ROC can trust
  As the ROC (responsable opérationnel de comptes) of a customer account
  I want every incident measured in business time against the account's contract
  So that the team steps in before the GTR (guaranteed restoration time) is breached
  and the month's statement shows the customer what was met and what was missed

  The customer "resto-chain" is a restaurant chain. An incident of impact 1 and urgency 2 is P2.
  Times are Paris local time. In May 2026 the 1st, 8th, 14th and 25th are public holidays;
  Friday 15, Monday 18 and Tuesday 19 May are ordinary working days.

  Background:
    Given the account "resto-chain" is covered Monday to Friday from 08:00 to 18:00 Paris time, French public holidays excepted
    And at 75 % of a target the assignment group is alerted, and at 90 % the account's ROC is informed
    And "roc-anne" records the contract of "resto-chain" applying from Friday 1 May 2026 at 00:00 with these targets:
      | priority | response | GTR  |
      | P1       | 15 min   | 1 h  |
      | P2       | 30 min   | 4 h  |
      | P3       | 1 h      | 8 h  |
      | P4       | 4 h      | 24 h |

  Scenario: The ROC sees an incident at risk and is informed before its GTR is breached
    When "hotline N1" logs the incident "Restaurant 42 router down" for "resto-chain", impact 1 and urgency 2, on Monday 18 May 2026 at 09:00
    Then "Restaurant 42 router down" is measured as P2 against contract version 1: respond within 30 min, restore within 4 h
    And the GTR of "Restaurant 42 router down" falls due on Monday 18 May 2026 at 13:00
    When "hotline N1" acknowledges "Restaurant 42 router down" on Monday 18 May 2026 at 09:10
    And time passes to Monday 18 May 2026 at 11:59
    Then the ROC's at-risk list for "resto-chain" shows "Restaurant 42 router down" with 1 h 1 min of business time left before its GTR, last warning at 50 %
    And nothing was escalated about "Restaurant 42 router down"
    When time passes to Monday 18 May 2026 at 12:00
    Then the ROC's at-risk list for "resto-chain" shows "Restaurant 42 router down" with 1 h of business time left before its GTR, last warning at 75 %
    And the assignment group was alerted about "Restaurant 42 router down" on Monday 18 May 2026 at 12:00, at 75 % of its GTR
    And the ROC was not yet informed about "Restaurant 42 router down"
    When time passes to Monday 18 May 2026 at 12:40
    Then the ROC was informed about "Restaurant 42 router down" on Monday 18 May 2026 at 12:36, at 90 % of its GTR
    And the ROC's at-risk list for "resto-chain" shows "Restaurant 42 router down" with 20 min of business time left before its GTR, last warning at 90 %
    And the SLA explanation of "Restaurant 42 router down" reads:
      | Clocks started: P2, contract version 1: response 30 min, restoration 4 h |
      | Response clock stopped (acknowledged) after 10 min: met                  |
      | Restoration at 50 % of its 4 h target                                    |
      | Restoration at 75 % of its 4 h target                                    |
      | Escalated to the assignment group at 75 % of restoration                 |
      | Restoration at 90 % of its 4 h target                                    |
      | Escalated to the ROC at 90 % of restoration                              |
    When "N2 technician" records that service is restored for "Restaurant 42 router down" on Monday 18 May 2026 at 12:50
    Then the GTR of "Restaurant 42 router down" was met in 3 h 50 min of business time
    And "Restaurant 42 router down" is not in the ROC's at-risk list for "resto-chain"

  Scenario: Waiting on the customer stops the GTR clock over the weekend
    When "hotline N1" logs the incident "Payment terminals offline at restaurant 7" for "resto-chain", impact 1 and urgency 2, on Friday 15 May 2026 at 16:00
    And "hotline N1" acknowledges "Payment terminals offline at restaurant 7" on Friday 15 May 2026 at 16:05
    And "N2 technician" puts "Payment terminals offline at restaurant 7" on hold awaiting the customer on Friday 15 May 2026 at 17:00
    And time passes to Monday 18 May 2026 at 09:30
    Then the GTR clock of "Payment terminals offline at restaurant 7" is paused awaiting the customer with 1 h counted
    And "Payment terminals offline at restaurant 7" is not in the ROC's at-risk list for "resto-chain"
    And nothing was escalated about "Payment terminals offline at restaurant 7"
    When "N2 technician" resumes "Payment terminals offline at restaurant 7" on Monday 18 May 2026 at 10:00
    Then the GTR of "Payment terminals offline at restaurant 7" falls due on Monday 18 May 2026 at 13:00
    When "N2 technician" records that service is restored for "Payment terminals offline at restaurant 7" on Monday 18 May 2026 at 11:00
    # counted without the pause it would have been 5 h (Friday 16-18, Monday 08-11): breached
    Then the GTR of "Payment terminals offline at restaurant 7" was met in 2 h of business time

  Scenario: Waiting on a supplier does not stop the GTR clock
    When "hotline N1" logs the incident "Carrier link down at restaurant 12" for "resto-chain", impact 1 and urgency 2, on Monday 18 May 2026 at 09:00
    And "hotline N1" acknowledges "Carrier link down at restaurant 12" on Monday 18 May 2026 at 09:10
    And "N2 technician" puts "Carrier link down at restaurant 12" on hold awaiting the supplier on Monday 18 May 2026 at 10:00
    And time passes to Monday 18 May 2026 at 12:00
    Then the GTR clock of "Carrier link down at restaurant 12" is running with 3 h counted
    And the ROC's at-risk list for "resto-chain" shows "Carrier link down at restaurant 12" with 1 h of business time left before its GTR, last warning at 75 %
    When time passes to Monday 18 May 2026 at 13:30
    Then the GTR of "Carrier link down at restaurant 12" was breached on Monday 18 May 2026 at 13:00
    When "N2 technician" records that service is restored for "Carrier link down at restaurant 12" on Monday 18 May 2026 at 14:00
    Then the GTR of "Carrier link down at restaurant 12" was missed in 5 h of business time

  Scenario: Service restored in the last minute of the GTR is met, not breached
    When "hotline N1" logs the incident "Restaurant 42 router down" for "resto-chain", impact 1 and urgency 2, on Monday 18 May 2026 at 09:00
    And "hotline N1" acknowledges "Restaurant 42 router down" on Monday 18 May 2026 at 09:10
    And "N2 technician" records that service is restored for "Restaurant 42 router down" on Monday 18 May 2026 at 13:00
    Then the GTR of "Restaurant 42 router down" was met in 4 h of business time
    And the GTR of "Restaurant 42 router down" was never breached
    And the breaches of "resto-chain" in May 2026 are:
      | incident | clock | breached at |
    And the statement of "resto-chain" for May 2026 shows for the P2 GTR under contract version 1: counted 1, met 1, breached 0, compliance 100 %

  Scenario: A breached GTR appears in the monthly statement
    Given "hotline N1" logged the incident "Restaurant 42 router down" for "resto-chain", impact 1 and urgency 2, on Friday 15 May 2026 at 17:00
    And "hotline N1" acknowledged "Restaurant 42 router down" on Friday 15 May 2026 at 17:10
    And "hotline N1" logged the incident "Restaurant 9 router down" for "resto-chain", impact 1 and urgency 2, on Monday 18 May 2026 at 09:00
    And "hotline N1" acknowledged "Restaurant 9 router down" on Monday 18 May 2026 at 09:15
    When "N2 technician" records that service is restored for "Restaurant 9 router down" on Monday 18 May 2026 at 11:00
    And "N2 technician" records that service is restored for "Restaurant 42 router down" on Monday 18 May 2026 at 13:00
    # Friday 17:00 + 4 h of business time: Friday 17-18, then Monday 08-11
    Then the GTR of "Restaurant 42 router down" was breached on Monday 18 May 2026 at 11:00
    And the GTR of "Restaurant 42 router down" was missed in 6 h of business time
    And the GTR of "Restaurant 9 router down" was met in 2 h of business time
    And the breaches of "resto-chain" in May 2026 are:
      | incident                  | clock    | breached at                     |
      | Restaurant 42 router down | GTR      | Monday 18 May 2026 at 11:00     |
    And the statement of "resto-chain" for May 2026 shows for the P2 GTR under contract version 1: counted 2, met 1, breached 1, compliance 50 %
    And the statement of "resto-chain" for May 2026 shows for the P2 response under contract version 1: counted 2, met 2, breached 0, compliance 100 %
    And the worst P2 GTR cases of "resto-chain" in May 2026 are:
      | incident                  | business time | target |
      | Restaurant 42 router down | 6 h           | 4 h    |
      | Restaurant 9 router down  | 2 h           | 4 h    |

  Scenario: A contract change applies from its date and leaves an earlier incident measured as before
    Given "hotline N1" logged the incident "Restaurant 42 router down" for "resto-chain", impact 1 and urgency 2, on Monday 18 May 2026 at 16:00
    When "roc-anne" changes the contract of "resto-chain" on Monday 18 May 2026 at 16:30, applying from Tuesday 19 May 2026 at 00:00 with these targets:
      | priority | response | GTR  |
      | P1       | 15 min   | 1 h  |
      | P2       | 30 min   | 2 h  |
      | P3       | 1 h      | 8 h  |
      | P4       | 4 h      | 24 h |
    And "hotline N1" logs the incident "Restaurant 9 router down" for "resto-chain", impact 1 and urgency 2, on Tuesday 19 May 2026 at 09:00
    And "N2 technician" records that service is restored for "Restaurant 42 router down" on Tuesday 19 May 2026 at 09:30
    And "N2 technician" records that service is restored for "Restaurant 9 router down" on Tuesday 19 May 2026 at 11:30
    Then "Restaurant 42 router down" is measured as P2 against contract version 1: respond within 30 min, restore within 4 h
    And "Restaurant 9 router down" is measured as P2 against contract version 2: respond within 30 min, restore within 2 h
    And the GTR of "Restaurant 42 router down" was met in 3 h 30 min of business time
    And the GTR of "Restaurant 9 router down" was breached on Tuesday 19 May 2026 at 11:00
    And the statement of "resto-chain" for May 2026 shows for the P2 GTR under contract version 1: counted 1, met 1, breached 0, compliance 100 %
    And the statement of "resto-chain" for May 2026 shows for the P2 GTR under contract version 2: counted 1, met 0, breached 1, compliance 0 %
    When "roc-anne" tries to change the contract of "resto-chain" on Tuesday 19 May 2026 at 12:00, applying from Monday 18 May 2026 at 00:00 with these targets:
      | priority | response | GTR |
      | P2       | 30 min   | 8 h |
    Then the change is refused because "a contract change never rewrites how earlier incidents were measured"
    And the contract of "resto-chain" still has 2 versions
    And "Restaurant 42 router down" is measured as P2 against contract version 1: respond within 30 min, restore within 4 h
